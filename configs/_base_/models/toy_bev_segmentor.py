model = dict(type="ToyBEVSegmentor", in_channels=2, num_classes=2, base_channels=16)
