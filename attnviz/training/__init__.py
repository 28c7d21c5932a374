"""Training: from a recipe to a checkpoint folder, behind ``attnviz train``.

One job per module, imported by path (``from attnviz.training.loop import train``):

- ``batching``: padded tensors from (source ids, target ids) pairs
- ``step``: the teacher-forced loss and one optimizer step (training, bench and tests share it)
- ``guidance``: guided alignment training: word links -> piece targets, and the loss
- ``corpora``: the recipe's train/dev/test pairs, its tokenizer, the encoded data
- ``output``: the output folder: never replace a checkpoint this run did not create
- ``state``: the resumable state (weights, Adam moments, RNG, position in the data)
- ``history``: history.csv, one row per validation, and its columns
- ``loop``: the loop itself: validation, best checkpoint, plateau decay, stop rules
- ``card``: what the card says about training, and the test-set and gold-set scores
- ``output_loss``: the output layer and label-smoothed loss fused, a block of rows at a time
- ``allocator``: glibc's malloc set to keep freed memory for the next training step
- ``workers``: ``--processes N``: the data-parallel worker processes the command starts
- ``adapt``: a model copy trained on the very pairs it aligns (``attnviz align --adapt-epochs``)

Nothing is imported here, so that reading ``history`` (as the training-curve figure does)
does not load the loop's dependencies.
"""

__all__: list[str] = []
