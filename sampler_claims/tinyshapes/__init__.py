"""Version 3 of the embedded world: one named shape in a scene the caption does not name.

Why a new world: in version 2's world the caption named both colours of every pixel, so it fixed 70%
of the latent variance, and classifier-free guidance at 7.5 amplified a whole image's worth of
difference between the conditional and unconditional predictions at high noise. DPM-Solver@20 could not
follow that stiff ODE. Here the caption names the shape and its colour only; the background colour,
its lighting gradient, the shape's position, size and stripes are left to the noise, as an SD 1.5
caption leaves composition, lighting and most pixels to it. The between-caption share of the variance
is measured by `dataset.caption_share`.
"""
