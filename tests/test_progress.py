"""Progress shows in a notebook as tqdm bars, and in a book build on the terminal only."""

import io
import os
import subprocess
import sys
import time

from rmbias import progress

KERNEL = """
from tqdm.auto import tqdm
from rmbias import progress
for _ in tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."):
    pass
bar = progress.bar(2, "kernel bar")
bar.update(2)
bar.close()
"""


def test_a_build_relays_bars_and_notes_as_lines_of_their_own(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(progress, "BUILD_INTERVAL", 0.0)  # every update, not one per 10 s
    with progress.relayed("  [02_x] ", tmp_path) as relay:
        assert progress.PROGRESS_ENV not in os.environ  # the kernel gets relay.env; this process keeps its own
        for name, value in relay.env.items():  # this process plays the kernel for the next lines
            monkeypatch.setenv(name, value)
        bar = progress.bar(3, "scoring some-rm", unit="cand")
        for _ in range(3):
            bar.update(1)
        bar.close()
        # in the chapter's kernel (a process started inside the block), a library's own bar (transformers
        # converting a GGUF file) would land in the page: it is off, and this module's bars are not
        kernel = subprocess.run(
            [sys.executable, "-c", KERNEL], capture_output=True, text=True, check=True, env={**os.environ, **relay.env}
        )
        assert kernel.stderr == "" and kernel.stdout == ""
        progress.note("run 1/2: smollm2-n24-seed0")
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("  [02_x] ") for line in lines)
    assert any("scoring some-rm" in line and "3/3" in line for line in lines)
    assert any("kernel bar" in line and "2/2" in line for line in lines)
    assert not any("GGUF" in line for line in lines)
    assert lines[-1] == "  [02_x] run 1/2: smollm2-n24-seed0"
    assert not any("\r" in line for line in lines)


def test_relay_prints_each_update_as_it_comes(tmp_path):
    path = tmp_path / "progress.log"
    path.write_text("")
    out = io.StringIO()
    relay = progress.Relay(path, "> ", out=out, poll=0.01)
    relay.start()
    with path.open("a") as stream:
        stream.write("\rtraining a: 1/4")
        stream.flush()
        time.sleep(0.2)
        assert out.getvalue() == "> training a: 1/4\n"  # shown before the next update comes
        stream.write("\rtraining a: 2/4\rtraining a: 4/4\n")
    relay.stop()
    assert out.getvalue().splitlines() == ["> training a: 1/4", "> training a: 2/4", "> training a: 4/4"]


def test_outside_a_build_progress_goes_to_the_notebook(monkeypatch, capsys):
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    progress.note("run 2/2")
    bar = progress.bar(2, "training x", unit="step")
    bar.update(2)
    bar.close()
    captured = capsys.readouterr()
    assert captured.out == "run 2/2\n"
    assert "training x" in captured.err and "2/2" in captured.err


def test_a_kernel_takes_the_share_of_the_cores_its_build_gives_it(tmp_path, monkeypatch):
    """A chapter's kernel reads its share at every progress update (the build rewrites it as chapters
    start and finish); outside a build, or with nothing written yet, the thread count stays."""
    import torch

    before = torch.get_num_threads()
    share = tmp_path / "07_x.threads"
    try:
        torch.set_num_threads(1)
        monkeypatch.delenv(progress.THREADS_ENV, raising=False)
        progress.follow_core_share()
        assert torch.get_num_threads() == 1
        monkeypatch.setenv(progress.THREADS_ENV, str(share))
        progress.follow_core_share()  # no file yet
        assert torch.get_num_threads() == 1
        share.write_text("2")
        bar = progress.bar(2, "training x", disable=True)
        assert torch.get_num_threads() == 2
        share.write_text("1")
        bar.update(1)  # every update follows it
        assert torch.get_num_threads() == 1
        progress.note("run 2/2")
        share.write_text("3")
        progress.note("run 2/2")
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
