#!/usr/bin/env python3
"""Cold save and restore of a real tree, to a local cache dir and to a real
Distribution registry on loopback, as ratios to `tar | zstd -T0` and
`zstd -d | tar -x` of the same tree, measured in the same run.

usage: scripts/bench.py REGCACHE_BIN [TREE] [--many-files TOOL]

With --many-files (target/release/examples/many_files), also restores a
gzip layer of 10^6 empty files (1000 dirs x 1000) and prints its time and
peak RSS: memory must not grow with the number of entries (< 100 MiB).

Without TREE, the tree is a real cargo target dir: the first --size MB of
this project's own target/debug (rlibs, objects, dep-info, build-script
output), copied into a temporary directory. Each measurement is the best of
--runs runs; page cache is warm for both sides alike.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time


def run(cmd, cwd=None):
    """Runs cmd (a shell line), returns (seconds, peak RSS in MiB of the
    largest process it started). wait4 reports this command's own tree
    only (the shell and every child it reaped), not earlier commands."""
    start = time.perf_counter()
    proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd], cwd=cwd,
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return elapsed, usage.ru_maxrss / 1024.0


def tree_size(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                total += os.lstat(full).st_size
    return total


REGISTRY_BIN = "/usr/bin/docker-registry"


def start_registry(work):
    """Starts Debian's Distribution registry on a free loopback port."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.makedirs(work, exist_ok=True)
    config = os.path.join(work, "registry.yml")
    with open(config, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                f"storage:\n  filesystem:\n    rootdirectory: {work}/registry-data\n"
                f"http:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", config], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("docker-registry did not start")


def sample_tree(source, dest, limit):
    """Copies files of `source` (sorted walk) into `dest` until `limit`
    bytes, keeping their relative paths and mtimes."""
    copied = 0
    for dirpath, dirnames, files in os.walk(source):
        dirnames.sort()
        for name in sorted(files):
            full = os.path.join(dirpath, name)
            if os.path.islink(full) or not os.path.isfile(full):
                continue
            target = os.path.join(dest, os.path.relpath(full, source))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(full, target)
            copied += os.path.getsize(full)
            if copied >= limit:
                return copied
    return copied


def best(label, cmd, runs, cwd=None, before=None):
    times, rss = [], 0.0
    for _ in range(runs):
        if before:
            before()
        seconds, peak = run(cmd, cwd)
        times.append(seconds)
        rss = max(rss, peak)
    print(f"  {label:<34} {min(times):7.2f}s  (runs: {', '.join(f'{t:.2f}' for t in times)})",
          flush=True)
    return min(times), rss


def many_files(tool, dirs=1000, files=1000):
    """Restore time and peak RSS of one layer of dirs x files empty files."""
    work = tempfile.mkdtemp(prefix="regcache-bench-many-")
    try:
        blob = os.path.join(work, "layer.gz")
        run(f"{tool} build {dirs} {files} {blob}")
        out = os.path.join(work, "out")
        os.sync()
        seconds, peak = run(f"{tool} restore {blob} {out}")
        print(f"restore of {dirs * files} empty files ({os.path.getsize(blob) / 1e6:.1f} MB gzip): "
              f"{seconds:.2f}s, peak RSS {peak:.1f} MiB (target < 100)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bin")
    parser.add_argument("tree", nargs="?")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=700, help="MB of target/debug to use")
    parser.add_argument("--many-files", help="the many_files example, for the 10^6-file restore")
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    if args.many_files:
        many_files(os.path.abspath(args.many_files))
    sample_dir = None
    if args.tree:
        tree = os.path.abspath(args.tree)
    else:
        sample_dir = tempfile.mkdtemp(prefix="regcache-bench-tree-")
        tree = os.path.join(sample_dir, "target")
        sample_tree("target/debug", tree, args.size * 1_000_000)
    size = tree_size(tree)
    print(f"tree: {tree} ({size / 1e6:.0f} MB), {os.cpu_count()} CPUs")
    if size < 500e6:
        print("warning: tree is smaller than 500 MB; numbers are less telling", file=sys.stderr)
    parent, name = os.path.dirname(tree), os.path.basename(tree)
    work = tempfile.mkdtemp(prefix="regcache-bench-")
    registry = None
    try:
        cache = os.path.join(work, "cache")
        archive = os.path.join(work, "floor.tar.zst")
        out = os.path.join(work, "out")

        # Every run starts with no dirty pages left by the one before, so
        # no side pays for another's writeback.
        def settle():
            os.sync()

        def fresh_cache():
            shutil.rmtree(cache, ignore_errors=True)
            settle()

        def fresh_out():
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            settle()

        registry, host = start_registry(work)
        print("save")
        floor_save, floor_save_rss = best(
            "tar | zstd -T0 (floor)", f"tar -C {parent} -cf - {name} | zstd -q -T0 -3 -o {archive} -f",
            args.runs, before=settle)
        ours_save, ours_save_rss = best(
            "regcache save (zstd)",
            f"{binary} save -q --cache-to type=local,dest={cache},compression=zstd {name}",
            args.runs, cwd=parent, before=fresh_cache)
        # A fresh repository per run: nothing to skip, mount or reuse.
        reg_save = []
        for i in range(args.runs):
            settle()
            seconds, peak = run(
                f"{binary} save -q --cache-to type=registry,ref={host}/bench/cold{i}:cache,"
                f"compression=zstd {name}", cwd=parent)
            reg_save.append((seconds, peak))
        ours_reg_save = min(t for t, _ in reg_save)
        ours_reg_save_rss = max(r for _, r in reg_save)
        print(f"  {'regcache save (zstd, registry)':<34} {ours_reg_save:7.2f}s  "
              f"(runs: {', '.join(f'{t:.2f}' for t, _ in reg_save)})", flush=True)
        print("restore")
        floor_restore, floor_restore_rss = best(
            "zstd -d | tar -x (floor)", f"zstd -q -d -c {archive} | tar -C {out} -xf -",
            args.runs, before=fresh_out)
        ours_restore, ours_restore_rss = best(
            "regcache restore",
            f"{binary} restore -q --cache-from type=local,src={cache}",
            args.runs, cwd=out, before=fresh_out)
        ours_reg_restore, ours_reg_restore_rss = best(
            "regcache restore (registry)",
            f"{binary} restore -q --cache-from {host}/bench/cold0:cache",
            args.runs, cwd=out, before=fresh_out)
        # copy: an uncompressed cache of the whole tree (a cache of about
        # --size MB), copied to another repository of the same registry
        # (blobs mounted) and to a second registry (blobs streamed).
        run(f"{binary} save -q --cache-to type=registry,ref={host}/bench/big:cache,"
            f"compression=uncompressed {name}", cwd=parent)
        second, second_host = start_registry(os.path.join(work, "second"))
        try:
            print("copy")
            copy_mount, _ = best(
                "copy, same registry (mount)",
                f"{binary} copy -q --cache-from {host}/bench/big:cache "
                f"--cache-to type=registry,ref={host}/bench/copy$RANDOM:cache,mode=max",
                args.runs)
            copy_stream, copy_rss = best(
                "copy, other registry (stream)",
                f"{binary} copy -q --cache-from {host}/bench/big:cache "
                f"--cache-to type=registry,ref={second_host}/bench/copy$RANDOM:cache,mode=max",
                args.runs)
        finally:
            second.kill()
            second.wait()
        cache_size = tree_size(cache)
        print()
        print(f"compressed: floor {os.path.getsize(archive) / 1e6:.0f} MB, regcache {cache_size / 1e6:.0f} MB")
        print(f"save    ratio {ours_save / floor_save:5.2f}x  (target <= 1.5x)   peak RSS {ours_save_rss:6.1f} MiB (floor {floor_save_rss:.1f})")
        print(f"restore ratio {ours_restore / floor_restore:5.2f}x  (target <= 1.5x)   peak RSS {ours_restore_rss:6.1f} MiB (floor {floor_restore_rss:.1f})")
        print(f"registry save    {ours_reg_save / floor_save:5.2f}x  (target <= 1.5x)   peak RSS {ours_reg_save_rss:6.1f} MiB (target <= 100)")
        print(f"registry restore {ours_reg_restore / floor_restore:5.2f}x  (target <= 1.5x)   peak RSS {ours_reg_restore_rss:6.1f} MiB (target <= 100)")
        print(f"copy of the {size / 1e6:.0f} MB uncompressed cache: same registry {copy_mount:.2f}s, "
              f"other registry {copy_stream:.2f}s (peak RSS {copy_rss:.1f} MiB)")
    finally:
        if registry is not None:
            registry.kill()
            registry.wait()
        shutil.rmtree(work, ignore_errors=True)
        if sample_dir:
            shutil.rmtree(sample_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
