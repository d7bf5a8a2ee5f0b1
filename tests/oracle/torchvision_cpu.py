"""Makes `import torchvision` work with the CPU build of torch 2.13.0 that our machines install.

torchvision 0.28.0 (the release for torch 2.13.0, tests/requirements.txt) is built against the CUDA
torch: its _C extension does not load with the CPU torch. torchvision itself tolerates that
(extension._has_ops() becomes False), but its _meta_registrations module then registers fake kernels
for operators that were never defined ("operator torchvision::nms does not exist") and the import
fails. Nothing the oracles use needs those operators (image transforms are plain torch), so an
empty stand-in for that one module is enough.

Import this module before transformers: transformers decides once whether torchvision is available,
and with it Hugging Face's AutoProcessor picks the fast (torchvision) image processors exactly as the
reference, which pins torchvision beside transformers, runs them.
"""
import sys
import types

sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
import torchvision  # noqa: E402,F401
from torchvision.transforms.v2 import functional  # noqa: E402,F401
