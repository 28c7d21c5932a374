"""Training's allocator setting: a large block freed is reused without new page faults."""

from __future__ import annotations

import platform
import resource

import pytest
import torch

from attnviz.training.allocator import reuse_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_freed_64_mb_block_is_reused_without_faulting_its_pages_in_again():
    reuse_freed_memory()

    def page_faults_of_a_64_mb_tensor() -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        logits = torch.empty(16 * 2**20)  # 64 MB, as the logits of a batch
        logits.fill_(1.0)
        del logits
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    # 64 MB is 16,384 pages of 4 kB: glibc's default maps them afresh every time; kept, they
    # fault in again only where the kernel reclaimed them meanwhile (idle memory may be)
    assert min(page_faults_of_a_64_mb_tensor() for _ in range(5)) < 1000
