"""The Ray engine (optional extra `storytok[ray]`, `make setup-ray`): storytok on a cluster.

    EncodeBatches      a callable class for ray.data.Dataset.map_batches: text column -> tokens
    encode_split       make encode ENGINE=ray: shards as tasks, a part per shard, same arrays
    train_bpe          make tokenizer ENGINE=ray: counting on the cluster, merges on the driver
    count_pretokens    just the counting (storytok.bpe.train.PretokenCounts)
    connect            RAY_ADDRESS's cluster, or a local Ray with WORKERS CPUs
    warm_up            a worker per CPU started, kernels and tokenizer loaded (benchmarks)

Importing this package does not import Ray; the calls do (and say `make setup-ray` when it
is missing). Workers run the same storytok as the driver: on a local Ray, the driver's own
Python and virtual environment; on a cluster, install storytok on every node.
"""
from storytok.engines.ray.batches import EncodeBatches
from storytok.engines.ray.cluster import Cluster, connect, require_ray
from storytok.engines.ray.count import count_pretokens, train_bpe
from storytok.engines.ray.encode import encode_split, warm_up
from storytok.engines.ray.tokenizer_files import TokenizerFiles

__all__ = ["EncodeBatches", "TokenizerFiles", "encode_split", "warm_up", "train_bpe", "count_pretokens", "connect", "Cluster",
           "require_ray"]
