"""What the framework backends share (mlee.runners.engine): the frame pretrained weights are downloaded in."""

from __future__ import annotations

import socket

import pytest

from mlee.errors import MleeError
from mlee.runners.engine import DOWNLOAD_FIX, DOWNLOAD_TIMEOUT_S, pretrained_download


def test_a_failed_download_is_one_error_with_the_fix_and_the_timeout_is_restored():
    before = socket.getdefaulttimeout()
    seen = []
    with pytest.raises(MleeError) as info:
        with pretrained_download("ResNet50", "weights.example", cached=True):
            seen.append(socket.getdefaulttimeout())
            raise ConnectionResetError("connection reset by peer")
    assert seen == [DOWNLOAD_TIMEOUT_S] and socket.getdefaulttimeout() == before
    assert info.value.message == "downloading pretrained weights of ResNet50 failed: connection reset by peer"
    assert info.value.fix == DOWNLOAD_FIX and isinstance(info.value.__cause__, ConnectionResetError)


def test_only_the_named_failures_count_as_a_failed_download():
    with pytest.raises(ValueError, match="bad shape"):  # torch: not a download error, the caller judges it
        with pretrained_download("ResNet50", "weights.example", cached=True):
            raise ValueError("bad shape")
    with pytest.raises(MleeError, match="downloading pretrained weights of EfficientNetB0 failed: bad shape"):
        with pretrained_download("EfficientNetB0", "weights.example", cached=True, failures=(Exception,)):
            raise ValueError("bad shape")  # keras wraps network errors in plain exceptions


def test_weights_not_cached_probe_the_host_before_anything_runs():
    ran = []
    with pytest.raises(MleeError, match="pretrained weights are not cached and 127.0.0.1 cannot be reached"):
        with pretrained_download("ResNet50", "127.0.0.1", cached=False):  # nothing listens on port 443 here
            ran.append(True)
    assert ran == []
    with pretrained_download("ResNet50", "127.0.0.1", cached=True):  # cached: no probe at all
        ran.append(True)
    assert ran == [True]
