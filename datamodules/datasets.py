"""The datasets of `conf/data/`: each names its torchvision class, shape and class count."""

from pathlib import Path

from torchvision import datasets

from datamodules.vision import VisionDataModule


class _IdxFormat(VisionDataModule):
    """MNIST-style datasets: four IDX files under ``<root>/<Name>/raw``."""

    input_shape = (1, 28, 28)
    num_classes = 10
    no_augment_reason = (
        "random crops and horizontal flips are CIFAR's augmentation (He et al. 2016); a "
        "mirrored digit is another digit or none, so the 28x28 sets train without them"
    )

    @classmethod
    def expected_files(cls, root: Path) -> list[Path]:
        raw = root / cls.dataset_cls.__name__ / "raw"
        return [raw / name.removesuffix(".gz") for name, _ in cls.dataset_cls.resources]


class _CifarFormat(VisionDataModule):
    """CIFAR-style datasets: pickled batches under ``<root>/<base_folder>``."""

    input_shape = (3, 32, 32)

    @classmethod
    def expected_files(cls, root: Path) -> list[Path]:
        ds = cls.dataset_cls
        names = [name for name, _ in ds.train_list + ds.test_list] + [ds.meta["filename"]]
        return [root / ds.base_folder / name for name in names]


class MNISTDataModule(_IdxFormat):
    dataset_cls = datasets.MNIST


class FashionMNISTDataModule(_IdxFormat):
    dataset_cls = datasets.FashionMNIST


class CIFAR10DataModule(_CifarFormat):
    dataset_cls = datasets.CIFAR10
    num_classes = 10


class CIFAR100DataModule(_CifarFormat):
    dataset_cls = datasets.CIFAR100
    num_classes = 100
