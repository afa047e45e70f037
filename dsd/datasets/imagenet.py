"""ImageNet-1k (ILSVRC 2012) as an ImageFolder tree: the DDS layout (224², 1000 classes, stem and
every stage stride 2) and recipe (`dds`). The tree is the data root itself or <root>/imagenet."""
from __future__ import annotations

from . import Layout, image_folder, register

#: torchvision's ImageNet normalization (pycls's _MEAN/_STD: the same numbers)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

IMAGENET = register(image_folder(
    "imagenet", description="ImageNet-1k (ILSVRC 2012), an ImageFolder tree",
    layout=Layout(resolution=224, num_classes=1000, stem_stride=2, first_stride=2),
    train_images=1_281_167, test_images=50_000, mean=MEAN, std=STD, recipe="dds",
    locations=lambda root: (root, root / "imagenet")))
