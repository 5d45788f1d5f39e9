"""gridledger: blockchain-based peer-to-peer electricity trading on a real distribution feeder."""

__version__ = "0.1.0"
