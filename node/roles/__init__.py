"""The duty nodes' machinery: the trainer (trainer.py, pipeline.py: training ahead) and what the
trainer and the verifier (verifier/node.py) share: the per-block run loop (runloop.py), sqlite
(db.py), Prometheus metrics (metrics.py).
"""
