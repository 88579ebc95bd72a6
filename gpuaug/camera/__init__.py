"""Camera ops after the render, in the order a camera makes an image: scene (gamma, occluders) -> optics (Gaussian
and motion blur) -> sensor (low resolution, noise) -> encoder (JPEG); :func:`gpuaug.camera.ops.apply_camera`
runs them. Each op is a batched pass of plain torch over the rendered (B, C, S, S) float32 [0, 1] tile, shared by
every backend, traced whole by ``torch.compile(aug.apply, fullgraph=True)``: no host sync, no per-sample Python,
static shapes (per-sample strength lives in the params; a sample with the op off gets its identity).
"""
