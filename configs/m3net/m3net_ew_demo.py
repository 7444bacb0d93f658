# m3net_nuscenes_demo.py with equal task weights (the summed loss) instead of FULLER: the baseline for
# gradient balancing on the driving model.
_base_ = ["./m3net_nuscenes_demo.py"]

optim_wrapper = dict(balancer=dict(_delete_=True, type="EqualWeighting"))
