"""Tiny ImageNet (200 classes of 64×64 images) as a dsd dataset, registered from outside the
package: the README's "Adding a dataset" example of an ImageFolder tree.

The data: <data root>/tiny64/train/<class>/…/*.JPEG and val/<class>/*.JPEG. The download
(tiny-imagenet-200.zip) has train/ in that shape already; its val/ images sit in one folder
with their classes in val_annotations.txt, so move them into class folders once:

    cd tiny-imagenet-200/val && while read f c _; do mkdir -p $c && mv images/$f $c/; done \
        < val_annotations.txt && rmdir images

Use it: `DSD_DATASETS=examples/tiny_imagenet_dataset.py dsd sample --space regnetx --dataset
tiny64 --flops-range 30MF 40MF`, then `dsd train` (its worker processes load the file too).
"""
from dsd.datasets import Layout, image_folder, register
from dsd.datasets.imagenet import MEAN, STD

register(image_folder(
    "tiny64", description="Tiny ImageNet: 200 classes of 64×64 images",
    # stem stride 1 and a halving first stage: 64 → 4×4 after four stages (CIFAR's 32 → 4)
    layout=Layout(resolution=64, num_classes=200, stem_stride=1, first_stride=2),
    train_images=100_000, test_images=10_000,
    mean=MEAN, std=STD,   # ImageNet's normalization: Tiny ImageNet's images are drawn from it
    recipe="dds"))        # DDS's recipe: random-resized crop + flip at the spec's resolution
