from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch

from hrsnn import io
from hrsnn.errors import ConfigError


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_creates_parents_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "file.bin"
    io.atomic_write_bytes(target, b"first")
    assert target.read_bytes() == b"first"
    io.atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    io.atomic_write_text(tmp_path / "t.txt", "héllo\nworld\r\n")
    assert (tmp_path / "t.txt").read_bytes() == "héllo\nworld\r\n".encode()
    assert _leftovers(target.parent) == []


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "good.txt"
    io.atomic_write_text(target, "good")

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(io.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        io.atomic_write_text(target, "half-written")
    assert target.read_text() == "good"
    assert _leftovers(tmp_path) == []


def test_atomic_write_keeps_existing_mode(tmp_path):
    target = tmp_path / "mode.txt"
    target.write_text("x")
    os.chmod(target, 0o640)
    io.atomic_write_text(target, "y")
    assert target.stat().st_mode & 0o777 == 0o640


def test_atomic_write_rejects_bad_input(tmp_path):
    with pytest.raises(ConfigError) as info:
        io.atomic_write_text(tmp_path / "x", b"bytes")  # type: ignore[arg-type]
    assert info.value.field == "text"
    with pytest.raises(ConfigError, match="data"):
        io.atomic_write_bytes(tmp_path / "x", "text")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="is a directory"):
        io.atomic_write_bytes(tmp_path, b"x")


def test_save_load_tensors_round_trip(tmp_path):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tensors = {
        "transposed": base.t(),  # non-contiguous
        "half_a": base[:2],  # two views sharing one storage
        "half_b": base[2:],
        "scalar": torch.tensor(3.5, dtype=torch.float64),
        "mask": torch.tensor([True, False]),
        "empty": torch.zeros(0, 3),
        "ints": torch.arange(5, dtype=torch.int64),
        "param": torch.nn.Parameter(torch.ones(2)),
    }
    path = tmp_path / "t.safetensors"
    io.save_tensors(path, tensors, metadata={"note": "hi"})
    loaded = io.load_tensors(path)
    assert set(loaded) == set(tensors)
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype
        assert torch.equal(loaded[name], tensor.detach())
    assert not loaded["param"].requires_grad
    assert io.load_metadata(path) == {"note": "hi"}
    io.save_tensors(tmp_path / "nometa.safetensors", {"x": torch.ones(1)})
    assert io.load_metadata(tmp_path / "nometa.safetensors") == {}


def test_save_tensors_rejects_bad_input(tmp_path):
    path = tmp_path / "bad.safetensors"
    with pytest.raises(ConfigError) as info:
        io.save_tensors(path, {"x": [1, 2]})  # type: ignore[dict-item]
    assert info.value.field == "tensors['x']"
    with pytest.raises(ConfigError, match="keys"):
        io.save_tensors(path, {1: torch.ones(1)})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="metadata"):
        io.save_tensors(path, {"x": torch.ones(1)}, metadata={"n": 1})  # type: ignore[dict-item]
    assert not path.exists()


def test_load_tensors_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.load_tensors(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ConfigError, match="safetensors"):
        io.load_tensors(junk)
    with pytest.raises(ConfigError, match="safetensors"):
        io.load_metadata(junk)


def test_load_shapes_reads_the_header_only(tmp_path, monkeypatch):
    path = tmp_path / "t.safetensors"
    io.save_tensors(path, {"w": torch.zeros(3, 2), "b": torch.zeros(4, dtype=torch.bool), "s": torch.tensor(1.0)})
    monkeypatch.setattr(io.safetensors.torch, "load_file", None)  # the header suffices
    assert io.load_shapes(path) == {"w": (3, 2), "b": (4,), "s": ()}
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ConfigError, match="safetensors"):
        io.load_shapes(junk)


@pytest.mark.parametrize("reader", ["load_tensors", "load_metadata", "load_shapes", "load_checkpoint"])
def test_readers_name_a_directory(tmp_path, reader):
    with pytest.raises(ConfigError, match="is a directory"):
        getattr(io, reader)(tmp_path)


def test_json_round_trip_and_format(tmp_path):
    path = tmp_path / "sub" / "obj.json"
    obj = {"b": (1, 2.5, None), "a": {"p": Path("/x/y"), "nan": math.nan, "inf": -math.inf}, "c": [True, "s"]}
    io.save_json(path, obj)
    text = path.read_text()
    assert text.endswith("\n")
    assert text.index('"a"') < text.index('"b"') < text.index('"c"')
    assert '\n  "a": {' in text
    back = io.load_json(path)
    assert back["b"] == [1, 2.5, None]
    assert back["a"]["p"] == "/x/y"
    assert math.isnan(back["a"]["nan"]) and back["a"]["inf"] == -math.inf
    assert back["c"] == [True, "s"]


def test_json_errors_name_the_key_path(tmp_path):
    path = tmp_path / "bad.json"
    with pytest.raises(TypeError, match=r"\$\['model'\]\['layers'\]\[1\]"):
        io.save_json(path, {"model": {"layers": [1, {2, 3}]}})
    with pytest.raises(TypeError, match=r"\.item\(\)"):
        io.save_json(path, {"w": torch.ones(2)})
    with pytest.raises(TypeError, match="keys must be str"):
        io.save_json(path, {"m": {3: "x"}})
    assert not path.exists()


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    tensors = {"model.w": torch.randn(3, 4), "model.b": torch.zeros(4)}
    state = {"epoch": 7, "best": 0.91, "history": [0.5, 0.7], "name": "run", "extra": None}
    io.save_checkpoint(path, tensors, state)
    loaded, loaded_state = io.load_checkpoint(path)
    assert loaded_state == state
    assert set(loaded) == set(tensors)
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())
    assert json.loads(io.load_metadata(path)[io.CHECKPOINT_STATE_KEY]) == state
    # the file is plain safetensors: 8-byte header length then a JSON header, no pickle opcode
    raw = path.read_bytes()
    assert raw[8:9] == b"{"
    assert b"\x80\x04" not in raw[:16]


def test_load_checkpoint_rejects_plain_tensor_file(tmp_path):
    path = tmp_path / "plain.safetensors"
    io.save_tensors(path, {"x": torch.ones(1)})
    with pytest.raises(ConfigError, match="not an hrsnn checkpoint"):
        io.load_checkpoint(path)
    with pytest.raises(ConfigError, match="state"):
        io.save_checkpoint(path, {"x": torch.ones(1)}, [1, 2])  # type: ignore[arg-type]


def test_flatten_unflatten_exact(tmp_path):
    shared = torch.arange(3.0)
    nested = {
        "state": {0: {"step": torch.tensor(2.0), "buf": torch.ones(2, 2)}, 1: {"step": torch.tensor(1.0)}},
        "groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1], "name": None, "flag": False}],
        "weird.key": {"a": shared},
        "weird": {"key": {"a": shared * 2}},
        "alias": shared,
        ("t", 1): -0.0,
        None: 1e300,
    }
    tensors, spec = io.flatten_state_dict(nested, prefix="opt.")
    assert all(name.startswith("opt.") for name in tensors)
    assert len(tensors) == 5  # the aliased tensor is stored once
    spec = json.loads(json.dumps(spec))  # must survive JSON
    back = io.unflatten_state_dict(tensors, spec)
    assert list(back) == list(nested)
    assert list(back["state"]) == [0, 1]
    assert back["groups"][0]["betas"] == (0.9, 0.999)
    assert isinstance(back["groups"][0]["betas"], tuple)
    assert isinstance(back["groups"][0]["params"], list)
    assert back["alias"] is back["weird.key"]["a"]
    assert torch.equal(back["weird"]["key"]["a"], shared * 2)
    assert math.copysign(1.0, back[("t", 1)]) == -1.0
    assert back[None] == 1e300
    assert torch.equal(back["state"][0]["buf"], torch.ones(2, 2))


def test_flatten_errors():
    with pytest.raises(TypeError, match=r"\$\['x'\]\[0\]"):
        io.flatten_state_dict({"x": [{1, 2}]})
    with pytest.raises(TypeError, match="key"):
        io.flatten_state_dict({frozenset(): 1})
    _, spec = io.flatten_state_dict({"w": torch.ones(1)})
    with pytest.raises(ConfigError, match="missing"):
        io.unflatten_state_dict({}, spec)
    with pytest.raises(ConfigError, match="spec"):
        io.unflatten_state_dict({}, {"tree": 1})


def _make_model_and_adam() -> tuple[torch.nn.Module, torch.optim.Adam]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    opt = torch.optim.Adam(
        [
            {"params": model[0].parameters(), "lr": 1e-2},
            {"params": model[2].parameters(), "lr": 3e-3, "betas": (0.8, 0.99), "amsgrad": True},
        ]
    )
    return model, opt


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 4, generator=gen)
    y = torch.randn(16, 2, generator=gen)
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(x), y).backward()
    opt.step()


def test_adam_checkpoint_resume_is_bit_exact(tmp_path):
    model, opt = _make_model_and_adam()
    _step(model, opt, 1)
    _step(model, opt, 2)

    opt_tensors, opt_spec = io.flatten_state_dict(opt.state_dict(), prefix="optimizer.")
    model_tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    path = tmp_path / "ckpt.safetensors"
    io.save_checkpoint(path, {**model_tensors, **opt_tensors}, {"optimizer": opt_spec, "epoch": 2})

    tensors, state = io.load_checkpoint(path)
    model2, opt2 = _make_model_and_adam()
    with torch.no_grad():
        for p in model2.parameters():
            p.add_(1.0)  # make sure the restored values really come from the file
    model2.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
    opt2.load_state_dict(io.unflatten_state_dict(tensors, state["optimizer"]))
    assert state["epoch"] == 2

    _step(model, opt, 3)
    _step(model2, opt2, 3)
    for p, q in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(p, q)
    for s, t in zip(opt.state.values(), opt2.state.values(), strict=True):
        assert s.keys() == t.keys()
        assert all(torch.equal(s[k], t[k]) for k in s)
    assert opt.state_dict()["param_groups"] == opt2.state_dict()["param_groups"]
