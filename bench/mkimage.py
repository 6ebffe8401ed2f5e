#!/usr/bin/env python3
"""Writes a deterministic ~500 MB docker-archive (the format `docker save` writes and `docker load` reads)
for bench/load-save.sh, without any daemon.

    mkimage.py OUT.tar [--ref bench/big:1] [--seed 42] [--scale 1.0]

Four layers of pseudo-random (incompressible) files from random.Random(seed), so every run of the script makes
the same bytes and the same image ID:
  1. one 200 MiB file             2. 64 files of 2 MiB
  3. 1024 files of 100 KiB        4. 4096 files of 16 KiB
about 492 MiB of file data in all (--scale multiplies every file size, e.g. 0.1 for a quick try).
Tar members: uid/gid 0, mode 0644 (dirs 0755), mtime 2024-01-01, sorted names.
"""
import argparse
import hashlib
import io
import json
import os
import random
import sys
import tarfile
import tempfile

MTIME = 1704067200  # 2024-01-01T00:00:00Z
LAYERS = [  # (directory, file count, file size in bytes)
    ("data/big", 1, 200 << 20),
    ("data/medium", 64, 2 << 20),
    ("data/small", 1024, 100 << 10),
    ("data/tiny", 4096, 16 << 10),
]


def info(name, size=0, kind=tarfile.REGTYPE, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size, ti.type, ti.mode, ti.mtime = size, kind, mode, MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def write_layer(path, rng, directory, count, size):
    """One layer tar at path: the parent directories, then `count` files of `size` random bytes."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        parts = directory.split("/")
        for i in range(len(parts)):
            tar.addfile(info("/".join(parts[: i + 1]) + "/", kind=tarfile.DIRTYPE, mode=0o755))
        width = len(str(count - 1))
        for n in range(count):
            data = rng.randbytes(size)
            tar.addfile(info(f"{directory}/f{n:0{width}d}.bin", size), io.BytesIO(data))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--ref", default="bench/big:1")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--scale", type=float, default=1.0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    out_dir = os.path.dirname(os.path.abspath(a.out))
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".mkimage-") as tmp:
        diff_ids, layer_paths, history = [], [], []
        for i, (d, count, size) in enumerate(LAYERS):
            size = max(1, int(size * a.scale))
            p = os.path.join(tmp, f"layer{i}.tar")
            write_layer(p, rng, d, count, size)
            diff_ids.append("sha256:" + sha256_file(p))
            layer_paths.append(p)
            history.append({"created": "2024-01-01T00:00:00Z",
                            "created_by": f"kiln bench: {count} random files of {size} bytes in /{d}"})
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                       "Cmd": ["sh"], "Labels": {"org.kiln.bench": "load-save", "seed": str(a.seed)}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }
        cfg = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
        cfg_hex = hashlib.sha256(cfg).hexdigest()
        # legacy layer directory names: the diff_id hex (docker uses a v1 id, any unique name loads)
        names = [f"{did[7:]}/layer.tar" for did in diff_ids]
        repo, _, tag = a.ref.rpartition(":") if ":" in a.ref.split("/")[-1] else (a.ref, "", "latest")
        manifest = [{"Config": f"{cfg_hex}.json", "RepoTags": [f"{repo}:{tag}"], "Layers": names}]
        repositories = {repo: {tag: diff_ids[-1][7:]}}
        tmp_out = a.out + ".tmp"
        with tarfile.open(tmp_out, "w", format=tarfile.PAX_FORMAT) as tar:
            for name, p in zip(names, layer_paths):
                d = name.split("/")[0]
                tar.addfile(info(d + "/", kind=tarfile.DIRTYPE, mode=0o755))
                tar.addfile(info(d + "/VERSION", 3), io.BytesIO(b"1.0"))
                with open(p, "rb") as f:
                    tar.addfile(info(name, os.path.getsize(p)), f)
                os.unlink(p)
            tar.addfile(info(f"{cfg_hex}.json", len(cfg)), io.BytesIO(cfg))
            for name, obj in (("manifest.json", manifest), ("repositories", repositories)):
                b = json.dumps(obj, separators=(",", ":")).encode()
                tar.addfile(info(name, len(b)), io.BytesIO(b))
        os.replace(tmp_out, a.out)
    print(f"{a.out}: {os.path.getsize(a.out) / 1e6:.0f} MB, {a.ref}, image ID sha256:{cfg_hex}", file=sys.stderr)


if __name__ == "__main__":
    main()
