"""``python -m perception_mtl.train CONFIG [...]``: same as ``tools/train.py``."""

from perception_mtl.apis.train import main

if __name__ == "__main__":
    main()
