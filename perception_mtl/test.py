"""``python -m perception_mtl.test CONFIG CHECKPOINT [...]``: same as ``tools/test.py``."""

from perception_mtl.apis.test import main

if __name__ == "__main__":
    main()
