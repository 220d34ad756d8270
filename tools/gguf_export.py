#!/usr/bin/env python3
"""gguf_export.py - writes a Hugging Face-format Gemma 2 directory (mkmodel's
output: config.json, model.safetensors or shards, tokenizer.json) as one GGUF
v3 file with llama.cpp's "gemma2" tensor names and metadata keys, for the
side-by-side benchmark against llama.cpp (bench/bench_cpu_llama.sh).

    tools/gguf_export.py MODEL_DIR OUT.gguf

What it is: a format converter for our bf16/f32 weights, python3 standard
library only, streaming the tensor bytes (no copy of the model in memory).
What it is not: a general converter (no quantization, no other architecture)
nor a tokenizer trainer: the vocabulary comes from tokenizer.json as-is.

Format (GGUF v3, little-endian): "GGUF", version, tensor count, key/value
count; the key/values (string = u64 length + bytes; arrays = element type,
u64 count, elements); per tensor its name, dims (innermost first), ggml type
and offset in the data section; then the data section aligned to
general.alignment (32). A row-major (n_out, n_in) weight is dims [n_in,
n_out] with the same bytes. Norm weights: HF Gemma stores w and applies
(1 + w); llama.cpp's gemma2 graph multiplies by the stored vector, so the
exporter writes 1 + w in F32 (as llama.cpp's own converter does).
"""
import json
import os
import struct
import sys
from array import array

GGUF_MAGIC = 0x46554747
ALIGN = 32
# gguf value types
T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9
# ggml tensor types
G_F32, G_F16, G_BF16 = 0, 1, 30
ST_DTYPE = {"F32": (G_F32, 4), "F16": (G_F16, 2), "BF16": (G_BF16, 2)}

LAYER_MAP = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "post_attention_norm.weight",
    "pre_feedforward_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
    "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
}


def s_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, typ, val):
    out = s_str(key) + struct.pack("<I", typ)
    if typ == T_U32:
        out += struct.pack("<I", val)
    elif typ == T_I32:
        out += struct.pack("<i", val)
    elif typ == T_F32:
        out += struct.pack("<f", val)
    elif typ == T_BOOL:
        out += struct.pack("<B", 1 if val else 0)
    elif typ == T_STR:
        out += s_str(val)
    else:
        raise ValueError(typ)
    return out


def kv_arr(key, elem, vals):
    out = [s_str(key), struct.pack("<IIQ", T_ARR, elem, len(vals))]
    if elem == T_STR:
        out.extend(s_str(v) for v in vals)
    elif elem == T_F32:
        out.append(array("f", vals).tobytes())
    elif elem == T_I32:
        out.append(array("i", vals).tobytes())
    else:
        raise ValueError(elem)
    return b"".join(out)


def read_safetensors(model_dir):
    """{hf name: (path, abs offset, nbytes, dtype, shape)} over all shards."""
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) \
        else ["model.safetensors"]
    out = {}
    for fn in files:
        path = os.path.join(model_dir, fn)
        with open(path, "rb") as f:
            (hlen,) = struct.unpack("<Q", f.read(8))
            hdr = json.loads(f.read(hlen))
        for name, t in hdr.items():
            if name == "__metadata__":
                continue
            b, e = t["data_offsets"]
            out[name] = (path, 8 + hlen + b, e - b, t["dtype"], t["shape"])
    return out


def vocab_meta(tok_path, vocab_size):
    t = json.load(open(tok_path, encoding="utf-8"))
    v = t["model"]["vocab"]
    tokens = [None] * vocab_size
    for piece, i in v.items():
        if 0 <= i < vocab_size:
            tokens[i] = piece
    special = {a["id"]: a for a in t.get("added_tokens", [])}
    types = []
    for i in range(vocab_size):
        p = tokens[i]
        if p is None:
            tokens[i] = "<unused_export_%d>" % i
            types.append(5)			# unused
        elif i in special and special[i].get("special"):
            types.append(2 if p == "<unk>" else 3)	# unknown / control
        elif i in special:
            types.append(4)			# user defined
        elif len(p) == 6 and p.startswith("<0x") and p.endswith(">"):
            types.append(6)			# byte
        else:
            types.append(1)			# normal
    # SentencePiece orders pieces by score: the id order stands in for it
    scores = [-float(i) for i in range(vocab_size)]
    return tokens, scores, types


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: gguf_export.py MODEL_DIR OUT.gguf")
    mdir, out_path = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(mdir, "config.json")))
    st = read_safetensors(mdir)
    n_layers, vocab = cfg["num_hidden_layers"], cfg["vocab_size"]
    hd = cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])

    tensors = []  # (gguf name, hf name, is_norm)
    tensors.append(("token_embd.weight", "model.embed_tokens.weight", False))
    for layer in range(n_layers):
        for hf, gg in LAYER_MAP.items():
            tensors.append(("blk.%d.%s" % (layer, gg), "model.layers.%d.%s" % (layer, hf),
                            hf.endswith("layernorm.weight")))
    tensors.append(("output_norm.weight", "model.norm.weight", True))

    A = "gemma2"
    meta = [
        kv("general.architecture", T_STR, A),
        kv("general.name", T_STR, os.path.basename(os.path.normpath(mdir))),
        kv("general.alignment", T_U32, ALIGN),
        kv(A + ".context_length", T_U32, cfg.get("max_position_embeddings", 8192)),
        kv(A + ".embedding_length", T_U32, cfg["hidden_size"]),
        kv(A + ".block_count", T_U32, n_layers),
        kv(A + ".feed_forward_length", T_U32, cfg["intermediate_size"]),
        kv(A + ".attention.head_count", T_U32, cfg["num_attention_heads"]),
        kv(A + ".attention.head_count_kv", T_U32, cfg["num_key_value_heads"]),
        kv(A + ".attention.key_length", T_U32, hd),
        kv(A + ".attention.value_length", T_U32, hd),
        kv(A + ".attention.layer_norm_rms_epsilon", T_F32, cfg.get("rms_norm_eps", 1e-6)),
        kv(A + ".attention.sliding_window", T_U32, cfg.get("sliding_window", 4096)),
        kv(A + ".attn_logit_softcapping", T_F32, cfg.get("attn_logit_softcapping") or 0.0),
        kv(A + ".final_logit_softcapping", T_F32, cfg.get("final_logit_softcapping") or 0.0),
        kv(A + ".rope.freq_base", T_F32, cfg.get("rope_theta", 10000.0)),
    ]
    tok_path = os.path.join(mdir, "tokenizer.json")
    if os.path.exists(tok_path):
        tokens, scores, types = vocab_meta(tok_path, vocab)
        meta += [
            kv("tokenizer.ggml.model", T_STR, "llama"),
            kv_arr("tokenizer.ggml.tokens", T_STR, tokens),
            kv_arr("tokenizer.ggml.scores", T_F32, scores),
            kv_arr("tokenizer.ggml.token_type", T_I32, types),
            kv("tokenizer.ggml.bos_token_id", T_U32, 2),
            kv("tokenizer.ggml.eos_token_id", T_U32, 1),
            kv("tokenizer.ggml.unknown_token_id", T_U32, 3),
            kv("tokenizer.ggml.padding_token_id", T_U32, 0),
            kv("tokenizer.ggml.add_bos_token", T_BOOL, True),
            kv("tokenizer.ggml.add_eos_token", T_BOOL, False),
        ]

    infos, plan, off = [], [], 0
    for gname, hname, is_norm in tensors:
        if hname not in st:
            sys.exit("gguf_export: %s lacks tensor %s" % (mdir, hname))
        path, foff, nbytes, dt, shape = st[hname]
        if dt not in ST_DTYPE:
            sys.exit("gguf_export: %s has dtype %s" % (hname, dt))
        gtype, esz = (G_F32, 4) if is_norm else ST_DTYPE[dt]
        n = 1
        for s in shape:
            n *= s
        size = n * esz
        dims = list(reversed(shape))
        infos.append(s_str(gname) + struct.pack("<I", len(dims)) +
                     b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", gtype, off))
        plan.append((path, foff, nbytes, dt, is_norm, size))
        off += (size + ALIGN - 1) // ALIGN * ALIGN

    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<IIQQ", GGUF_MAGIC, 3, len(infos), len(meta)))
        for m in meta:
            f.write(m)
        for i in infos:
            f.write(i)
        f.write(b"\0" * (-f.tell() % ALIGN))
        for path, foff, nbytes, dt, is_norm, size in plan:
            with open(path, "rb") as src:
                src.seek(foff)
                if is_norm:
                    raw = src.read(nbytes)
                    if dt == "BF16":
                        w = array("f", array("I", [u << 16 for u in array("H", raw)]).tobytes())
                    elif dt == "F32":
                        w = array("f", raw)
                    else:
                        sys.exit("gguf_export: f16 norm weights are not supported")
                    f.write(array("f", [1.0 + x for x in w]).tobytes())
                else:
                    left = nbytes
                    while left:
                        chunk = src.read(min(left, 64 << 20))
                        if not chunk:
                            sys.exit("gguf_export: %s is truncated" % path)
                        f.write(chunk)
                        left -= len(chunk)
            f.write(b"\0" * (-size % ALIGN))
    os.replace(tmp, out_path)
    print("gguf_export: wrote %s (%d tensors, %.1f MiB)" % (out_path, len(infos), os.path.getsize(out_path) / 2**20))


if __name__ == "__main__":
    main()
