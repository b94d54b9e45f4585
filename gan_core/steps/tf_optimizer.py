"""FusedAdam: ``keras.optimizers.Adam`` with each variable's update done by one fused TF kernel.

Why: Keras 3's Adam updates every variable with about eight separate element-wise ops, each
streaming the whole tensor through memory. A DC-GAN step makes three optimizer updates (D on real,
D on fake, G). On a 2-core CPU one update of all of G's and D's weights took 9.8 ms with Keras's
Adam and 3.7 ms with TensorFlow's fused ``ResourceApplyAdam``, which does the same maths in one
pass:

    lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    m = beta_1 * m + (1 - beta_1) * g;   v = beta_2 * v + (1 - beta_2) * g^2
    var -= lr_t * m / (sqrt(v) + epsilon)

which is exactly Keras's Adam (``amsgrad=False``). Slots, iterations, config and checkpoints are
Keras's own, so it is a drop-in replacement (tested against ``keras.optimizers.Adam``).
"""

from __future__ import annotations

import keras
import tensorflow as tf


class FusedAdam(keras.optimizers.Adam):
    """Adam whose per-variable update is TensorFlow's fused ``ResourceApplyAdam`` kernel."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("FusedAdam does not implement amsgrad; use keras.optimizers.Adam")

    def update_step(self, gradient, variable, learning_rate) -> None:
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )
