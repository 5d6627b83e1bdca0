"""Proxy benchmark of zero-cost training-recipe changes for the main job's captcha CRNN (JAX backend).

Orchestrator (no args): renders the main job's 30,000 seed-42 captchas and a 5,000 seed-7001 dev set
with a process pool, and launches one subprocess per "group" (a model graph). A group trains all
its runs (variants x training seeds) at once: the Keras model's stateless_call is vmapped over the
runs, so one compiled step trains e.g. 48 models. Runs of a group share their seed's initial
weights, dropout draws and shuffle order across variants (paired comparison).

Fidelity to the product (ocr_core.captcha): build_crnn's layers (Conv2D written as 9 shifted
slices x one matmul, mathematically the same layer, same kernel shape and glorot init, since
vmapped convolutions run as slow grouped convolutions on GPU), Adam(clipnorm=5.0) with
learning_rate_schedule's warm-up + cosine (applied as lr_t x the unit-lr Adam step, which is
exact since Adam's step is linear in lr), CTC loss mean over batch, batch 32, reshuffled every
epoch, final epoch kept, greedy decoding, whole-label accuracy. fp32 matmuls at 'highest'
precision (no TF32), as on CPU.

Usage:  KERAS_BACKEND=jax PYTHONPATH=. python bench/gpu_recipes/gpu_recipes.py [--tiny]
Results: one JSON line per run in $OUT/results.jsonl (or ./gpu_recipes_out/). The run of
2026-12-04 on a lent H200 (keras 3.15.1, jax, carried as wheels): `results-h200-2026-12-04.jsonl`
(112 runs), summarised by `summarize.py` and in BENCHMARKS.md ("Captcha recipe: seed noise").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

BATCH = 32
HEIGHT, WIDTH = 32, 128
LABEL_LEN = 5
ALPHABET = "2345678bcdefgmnpwxy"  # ocr_core.captcha.synthetic.CAPTCHA_ALPHABET
TRAIN_SEED, DEV_SEED = 42, 7001
EVAL_CHUNK = 100

# variant name -> overrides of the baseline recipe
BASE = dict(data="n30", epochs=2, peak=3e-3, warmup_div=20, alpha=0.01,
            dropout=0.2, gru=96, bn_momentum=0.9)
VARIANTS = {
    "baseline": {},
    "n20k_e3": dict(data="n20", epochs=3),
    "lr2e-3": dict(peak=2e-3),
    "lr5e-3": dict(peak=5e-3),
    "alpha0": dict(alpha=0.0),
    "warmup10": dict(warmup_div=10),
    "no_dropout": dict(dropout=0.0),
    "bn0.99": dict(bn_momentum=0.99),
    "gru128": dict(gru=128),
    "n30k_e3": dict(epochs=3),
    "lr4e-3": dict(peak=4e-3),
    "lr7e-3": dict(peak=7e-3),
}
# groups in priority order: each is one graph (dropout, gru, bn momentum) and one step count
GROUPS = {
    "G1": ["baseline", "n20k_e3", "lr2e-3", "lr5e-3", "alpha0", "warmup10"],
    "G2": ["no_dropout"],
    "G3": ["bn0.99"],
    "G4": ["gru128"],
    "G5": ["n30k_e3"],
    # second device run: fresh seeds for the learning-rate direction
    "G6": ["baseline", "lr4e-3", "lr5e-3", "lr7e-3"],
}
GROUP_SEED_START = {"G6": 8}


def cfg_of(variant: str) -> dict:
    return {**BASE, **VARIANTS[variant]}


def sizes(tiny: bool) -> dict:
    if tiny:
        return dict(n30=480, n20=320, n_dev=200)
    return dict(n30=30_000, n20=20_000, n_dev=5_000)


def fwd_flops(gru: int) -> float:
    """Forward multiply-adds x2 per image of build_crnn at 128x32 (convs, dense, BiGRU, logits)."""
    flops, w, h, cin = 0, WIDTH, HEIGHT, 1
    for cout, wp in zip((16, 32, 64, 128), (2, 2, 1, 1), strict=False):
        flops += 2 * w * h * 9 * cin * cout
        w, h, cin = w // wp, h // 2, cout
    t, feat = w, h * cin  # 32 steps, 256 features
    flops += 2 * t * feat * 128
    flops += 2 * 2 * t * 3 * (128 * gru + gru * gru)  # two directions, 3 gates
    flops += 2 * t * 2 * gru * (len(ALPHABET) + 1)
    return flops


# --------------------------------------------------------------------------- orchestrator

def generate(out_file: Path, tiny: bool, workers: int) -> None:
    from genworker import render_chunk

    from ocr_core.captcha.synthetic import plan_shards

    s = sizes(tiny)
    t0 = time.time()
    (train_shard,) = plan_shards(s["n30"], TRAIN_SEED, shards=1)
    (dev_shard,) = plan_shards(s["n_dev"], DEV_SEED, shards=1)
    jobs = train_shard.chunks() + dev_shard.chunks()
    import multiprocessing

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(render_chunk, *zip(*jobs, strict=False)))
    n_train_chunks = len(train_shard.chunks())
    x = np.concatenate([r[0] for r in results[:n_train_chunks]])
    xd = np.concatenate([r[0] for r in results[n_train_chunks:]])
    labels = [label for r in results[:n_train_chunks] for label in r[1]]
    dev_labels = [label for r in results[n_train_chunks:] for label in r[1]]
    assert labels == list(train_shard.labels) and dev_labels == list(dev_shard.labels)
    index = {c: i for i, c in enumerate(ALPHABET, start=1)}
    enc = lambda ls: np.array([[index[c] for c in label] for label in ls], dtype=np.int32)  # noqa: E731
    tmp = out_file.with_suffix(".tmp.npz")
    np.savez(tmp, x=x, y=enc(labels), xd=xd, yd=enc(dev_labels))
    os.replace(tmp, out_file)
    overlap = len(set(labels) & set(dev_labels))
    print(f"[gen] {len(labels)} train-source + {len(dev_labels)} dev captchas in "
          f"{time.time() - t0:.1f}s ({overlap} dev labels also in the train source)", flush=True)


def orchestrate(args) -> None:
    t0 = time.time()
    out_dir = Path(os.environ.get("OUT") or HERE / "gpu_recipes_out")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = Path(args.data_file)
    if data.exists():
        data.unlink()
    env = dict(os.environ, PYTHONUNBUFFERED="1", KERAS_BACKEND="jax",
               XLA_PYTHON_CLIENT_PREALLOCATE="false", GPU_RECIPES_T0=str(t0))
    env["PYTHONPATH"] = str(HERE.parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
    pending = [g for g in GROUPS if g in args.groups.split(",")]
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    durations: dict[str, float] = {}

    def launch(group: str) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--group", group,
               "--data-file", str(data), "--seeds", str(args.seeds), "--out", str(out_dir)]
        if args.tiny:
            cmd.append("--tiny")
        if group == "G5":
            cmd[cmd.index("--seeds") + 1] = str(args.seeds_g5)
        running[group] = (subprocess.Popen(cmd, env=env), time.time())
        print(f"[orch +{time.time() - t0:.0f}s] launched {group}", flush=True)

    for _ in range(min(args.parallel, len(pending))):
        launch(pending.pop(0))
    generate(data, args.tiny, args.gen_workers)
    while running or pending:
        time.sleep(1)
        elapsed = time.time() - t0
        for g, (p, start) in list(running.items()):
            if p.poll() is not None:
                durations[g] = time.time() - start
                print(f"[orch +{elapsed:.0f}s] {g} exited rc={p.returncode} after "
                      f"{durations[g]:.0f}s", flush=True)
                del running[g]
            elif elapsed > args.hard_limit:
                print(f"[orch +{elapsed:.0f}s] killing {g} (hard limit)", flush=True)
                p.kill()
        while pending and len(running) < args.parallel:
            g = pending[0]
            # later groups skip data generation; estimate from finished groups (x1.5 for G5)
            est = (min(durations.values()) if durations else 200.0) * (1.5 if g == "G5" else 1.0)
            if elapsed + est > args.budget:
                print(f"[orch +{elapsed:.0f}s] skipping {pending} (estimated {est:.0f}s, "
                      f"budget {args.budget}s)", flush=True)
                pending.clear()
                break
            launch(pending.pop(0))
    print(f"[orch] done in {time.time() - t0:.0f}s", flush=True)


# --------------------------------------------------------------------------- one group

def keras_defs():
    """(PatchConv2D, build_crnn(cfg, conv=PatchConv2D)); imports keras."""
    import keras
    from keras import layers, ops

    class PatchConv2D(layers.Layer):
        """Conv2D(filters, 3, padding='same', use_bias=False) as 9 shifted slices @ (9*cin, cout)."""

        def __init__(self, filters: int, **kwargs) -> None:
            super().__init__(**kwargs)
            self.filters = filters

        def build(self, input_shape) -> None:
            self.kernel = self.add_weight(shape=(3, 3, input_shape[-1], self.filters),
                                          initializer="glorot_uniform", name="kernel")

        def call(self, x):
            w, h = x.shape[1], x.shape[2]
            p = ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
            patches = ops.concatenate([p[:, i:i + w, j:j + h, :] for i in range(3) for j in range(3)],
                                      axis=-1)  # (B, W, H, 9*cin), order (i, j, cin)
            return ops.matmul(patches, ops.reshape(self.kernel, (-1, self.filters)))

        def compute_output_shape(self, input_shape):
            return (*input_shape[:-1], self.filters)

    def build_crnn(cfg: dict, conv=PatchConv2D) -> keras.Model:
        inputs = keras.Input((WIDTH, HEIGHT, 1), name="image")
        x = inputs
        for filters, wp in zip((16, 32, 64, 128), (2, 2, 1, 1), strict=False):
            x = conv(filters)(x)
            x = layers.BatchNormalization(momentum=cfg["bn_momentum"])(x)
            x = layers.ReLU()(x)
            x = layers.MaxPooling2D((wp, 2))(x)
        x = layers.Reshape((WIDTH // 4, (HEIGHT // 16) * 128))(x)
        x = layers.Dense(128, activation="relu")(x)
        x = layers.Dropout(cfg["dropout"])(x)
        x = layers.Bidirectional(layers.GRU(cfg["gru"], return_sequences=True))(x)
        logits = layers.Dense(len(ALPHABET) + 1, name="logits")(x)
        return keras.Model(inputs, logits, name="crnn")

    return PatchConv2D, build_crnn



def run_group(args) -> None:
    t_start = time.time()
    t0 = float(os.environ.get("GPU_RECIPES_T0", t_start))
    import jax

    jax.config.update("jax_default_matmul_precision", "highest")
    import jax.numpy as jnp
    import keras

    from ocr_core.captcha.metrics import edit_distance

    def log(msg: str) -> None:
        print(f"[{args.group} +{time.time() - t0:.0f}s] {msg}", flush=True)

    log(f"jax {jax.__version__} keras {keras.__version__} backend {keras.backend.backend()} "
        f"devices {jax.devices()}")

    PatchConv2D, build_crnn = keras_defs()

    s = sizes(args.tiny)
    variants = GROUPS[args.group]
    seeds = list(range(GROUP_SEED_START.get(args.group, 0),
                       GROUP_SEED_START.get(args.group, 0) + args.seeds))
    runs = [(v, sd) for v in variants for sd in seeds]
    cfgs = [cfg_of(v) for v in variants]
    graph = {k: cfgs[0][k] for k in ("dropout", "gru", "bn_momentum")}
    assert all({k: c[k] for k in graph} == graph for c in cfgs), "one graph per group"
    steps_set = set()
    for c in cfgs:
        n_train = int(0.8 * s[c["data"]])
        assert n_train % BATCH == 0
        steps_set.add(n_train // BATCH * c["epochs"])
    (total_steps,) = steps_set
    k = max(d for d in range(1, 51) if total_steps % d == 0)  # steps per compiled call
    m = len(runs)

    # ---- initial states: one model per seed (variants of a seed share weights and dropout seeds)
    per_seed = {}
    for sd in seeds:
        keras.utils.set_random_seed(sd)
        model = build_crnn(graph)
        per_seed[sd] = ([np.asarray(v.value) for v in model.trainable_variables],
                        [np.asarray(v.value) for v in model.non_trainable_variables])
        if sd == seeds[0]:
            template = model
    params = template.count_params()
    opt = keras.optimizers.Adam(learning_rate=1.0, clipnorm=5.0)
    opt.build(template.trainable_variables)
    opt0 = [np.asarray(v.value) for v in opt.variables]
    stack = lambda arrs: [jnp.asarray(np.stack(a)) for a in zip(*arrs, strict=False)]  # noqa: E731
    tv = stack([per_seed[sd][0] for _, sd in runs])
    ntv = stack([per_seed[sd][1] for _, sd in runs])
    ov = stack([opt0 for _ in runs])
    log(f"{m} runs ({variants} x seeds {seeds}), {params:,} params, {total_steps} steps "
        f"({k}/call), built in {time.time() - t_start:.0f}s")

    one_step = make_step(template, opt)
    vstep = jax.vmap(one_step)

    def train_chunk(tv, ntv, ov, xs, ys, idx, lrs, start):
        def body(i, carry):
            tv, ntv, ov, _ = carry
            bidx = idx[start + i]  # (m, B)
            x = (xs[bidx].astype(jnp.float32) * (1.0 / 255.0))[..., None]
            return vstep(tv, ntv, ov, x, ys[bidx], lrs[start + i])
        return jax.lax.fori_loop(0, k, body, (tv, ntv, ov, jnp.zeros((m,), jnp.float32)))

    def predict(tv, ntv, x):
        logits, _ = template.stateless_call(tv, ntv, x, training=False)
        return jnp.argmax(logits, axis=-1).astype(jnp.int8)

    vpredict = jax.jit(jax.vmap(predict, in_axes=(0, 0, None)))

    sds = jax.ShapeDtypeStruct
    shapes = (jax.tree.map(lambda a: sds(a.shape, a.dtype), tv),
              jax.tree.map(lambda a: sds(a.shape, a.dtype), ntv),
              jax.tree.map(lambda a: sds(a.shape, a.dtype), ov),
              sds((s["n30"], WIDTH, HEIGHT), jnp.uint8), sds((s["n30"], LABEL_LEN), jnp.int32),
              sds((total_steps, m, BATCH), jnp.int32), sds((total_steps, m), jnp.float32),
              sds((), jnp.int32))
    tc = time.time()
    compiled = jax.jit(train_chunk, donate_argnums=(0, 1, 2)).lower(*shapes).compile()
    vpredict = vpredict.lower(shapes[0], shapes[1], sds((EVAL_CHUNK, WIDTH, HEIGHT, 1),
                                                        jnp.float32)).compile()
    compile_s = time.time() - tc
    log(f"compiled the training chunk and the dev reader in {compile_s:.0f}s")

    # ---- data
    tw = time.time()
    data = Path(args.data_file)
    while not data.exists():
        time.sleep(0.5)
    d = np.load(data)
    xs, ys = jnp.asarray(d["x"]), jnp.asarray(d["y"])
    xd = (d["xd"].astype(np.float32) / 255.0)[..., None]
    yd = d["yd"]
    wait_s = time.time() - tw
    log(f"data ready after waiting {wait_s:.0f}s")

    # ---- per-run batch indices and learning rates
    idx = np.zeros((total_steps, m, BATCH), np.int32)
    lrs = np.zeros((total_steps, m), np.float32)
    for r, (v, sd) in enumerate(runs):
        c = cfg_of(v)
        n_src = s[c["data"]]
        split = np.random.default_rng(20240).permutation(n_src)  # seeded 80/10/10 split
        train = split[: int(0.8 * n_src)]
        rng = np.random.default_rng([sd, 1])
        order = np.concatenate([rng.permutation(train) for _ in range(c["epochs"])])
        idx[:, r] = order.reshape(total_steps, BATCH)
        lrs[:, r] = lr_schedule(c["peak"], total_steps, c["warmup_div"], c["alpha"])
    idx_d, lrs_d = jnp.asarray(idx), jnp.asarray(lrs)

    # ---- train
    tt = time.time()
    state = (tv, ntv, ov)
    losses = None
    n_calls = total_steps // k
    for call in range(n_calls):
        *state3, losses = compiled(*state, xs, ys, idx_d, lrs_d, jnp.int32(call * k))
        state = tuple(state3)
        if call == 0 or (call + 1) % max(1, n_calls // 6) == 0 or call == n_calls - 1:
            lo = np.asarray(losses)
            log(f"step {(call + 1) * k}/{total_steps}: loss mean {lo.mean():.3f} "
                f"[{lo.min():.3f}..{lo.max():.3f}] ({time.time() - tt:.1f}s)")
    jax.block_until_ready(state)
    train_s = time.time() - tt
    final_losses = np.asarray(losses)

    # ---- evaluate on the dev set
    te = time.time()
    tv, ntv, _ = state
    assert len(xd) % EVAL_CHUNK == 0
    preds = np.concatenate([np.asarray(vpredict(tv, ntv, jnp.asarray(xd[i:i + EVAL_CHUNK])))
                            for i in range(0, len(xd), EVAL_CHUNK)], axis=1)  # (m, n_dev, T)
    truths = ["".join(ALPHABET[i - 1] for i in row) for row in yd]
    eval_s = time.time() - te
    out = Path(args.out) / "results.jsonl"
    for r, (v, sd) in enumerate(runs):
        texts = greedy_texts(preds[r])
        correct = sum(p == t for p, t in zip(texts, truths, strict=False))
        cer = sum(edit_distance(p, t) for p, t in zip(texts, truths, strict=False) if p != t) / (
            LABEL_LEN * len(truths))
        c = cfg_of(v)
        rec = dict(group=args.group, variant=v, seed=sd, dev_acc=correct / len(truths),
                   dev_errors=len(truths) - correct, n_dev=len(truths), dev_cer=cer,
                   final_train_loss=float(final_losses[r]),
                   train_images=int(0.8 * s[c["data"]]), generated=s[c["data"]],
                   epochs=c["epochs"], images_seen=int(0.8 * s[c["data"]]) * c["epochs"],
                   steps=total_steps, params=params, fwd_mflops=fwd_flops(c["gru"]) / 1e6,
                   cfg=c, runs_in_group=m, compile_s=round(compile_s, 1),
                   group_train_s=round(train_s, 1), group_eval_s=round(eval_s, 1),
                   tiny=args.tiny)
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        log(f"{v:11s} seed {sd}: dev acc {100 * rec['dev_acc']:.2f}% "
            f"({rec['dev_errors']} errors), CER {cer:.4f}, final loss {rec['final_train_loss']:.4f}")
    log(f"done: compile {compile_s:.0f}s, train {train_s:.0f}s for {m} runs, eval {eval_s:.0f}s, "
        f"total {time.time() - t_start:.0f}s")


def make_step(template, opt):
    """One training step of one run: (tv, ntv, ov, x, y, lr) -> (tv, ntv, ov, loss)."""
    import jax
    import jax.numpy as jnp
    from keras import ops

    def ctc_mean(y, logits):
        b = y.shape[0]
        lab_len = jnp.sum(y != 0, axis=-1).astype("int32")
        log_len = jnp.full((b,), logits.shape[1], dtype="int32")
        return jnp.mean(ops.ctc_loss(y, logits, lab_len, log_len, mask_index=0))

    def loss_fn(tv, ntv, x, y):
        logits, ntv2 = template.stateless_call(tv, ntv, x, training=True)
        return ctc_mean(y, logits), ntv2

    def one_step(tv, ntv, ov, x, y, lr):
        (loss, ntv2), grads = jax.value_and_grad(loss_fn, has_aux=True)(tv, ntv, x, y)
        tv_unit, ov2 = opt.stateless_apply(ov, grads, tv)  # Adam step at lr = 1
        tv2 = [t + lr * (n - t) for t, n in zip(tv, tv_unit, strict=False)]
        return tv2, ntv2, ov2, loss

    return one_step


def lr_schedule(peak: float, total_steps: int, warmup_div: int, alpha: float) -> np.ndarray:
    """ocr_core.captcha.training.learning_rate_schedule (Keras CosineDecay with warm-up) at the
    optimizer's iterations 0..total_steps-1 (warmup_div 20 = the product's 5%)."""
    warmup = max(1, total_steps // warmup_div)
    decay_steps = max(1, total_steps - warmup)
    initial = peak / 100
    step = np.minimum(np.arange(total_steps, dtype=np.float64), decay_steps + warmup)
    warm = (peak - initial) * (step / warmup) + initial
    frac = (step - warmup) / decay_steps
    decayed = peak * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * frac)) + alpha)
    return np.where(step < warmup, warm, decayed).astype(np.float32)


def greedy_texts(best: np.ndarray) -> list[str]:
    """(n, T) best classes -> texts: merge repeats, drop blanks (ocr_core.captcha.ctc)."""
    best = best.astype(np.int64)
    keep = np.ones_like(best, dtype=bool)
    keep[:, 1:] = best[:, 1:] != best[:, :-1]
    keep &= best != 0
    table = np.array(["", *ALPHABET])
    return ["".join(table[row[k]]) for row, k in zip(best, keep, strict=False)]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--group")
    p.add_argument("--groups", default=",".join(GROUPS))
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--seeds-g5", type=int, default=8)
    p.add_argument("--parallel", type=int, default=3)
    p.add_argument("--gen-workers", type=int, default=16)
    p.add_argument("--budget", type=float, default=480)
    p.add_argument("--hard-limit", type=float, default=520)
    p.add_argument("--data-file", default="/tmp/gpu_recipes_data.npz")
    p.add_argument("--out", default="")
    args = p.parse_args()
    if args.group:
        run_group(args)
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
