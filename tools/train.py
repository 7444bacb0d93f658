"""Train a model: ``python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
[--cfg-options k=v ...] [--launcher none|pytorch]``. The work is done in perception_mtl.apis."""

from perception_mtl.apis.train import main

if __name__ == "__main__":
    main()
