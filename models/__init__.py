"""Plain nn.Modules (one file each) and the LightningModule that trains any of them."""

from models.classifier import Classifier
from models.cnn import CNN
from models.lstm import LayerNormLSTMCell, LSTMClassifier
from models.mlp import MLP
from models.recurrent import GRUClassifier, LayerNormRNNCell, RNNClassifier
from models.resnet import BasicBlock, ResNet

__all__ = [
    "CNN",
    "MLP",
    "BasicBlock",
    "Classifier",
    "GRUClassifier",
    "LSTMClassifier",
    "LayerNormLSTMCell",
    "LayerNormRNNCell",
    "RNNClassifier",
    "ResNet",
]
