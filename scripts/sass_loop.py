#!/usr/bin/env python3
"""Instruction mix of a kernel's hot loop, read from SASS on the CPU machine (no GPU needed).

The hot loop is the innermost backward branch holding the most HMMA instructions. Counting it
before and after a change tells whether the change cut what the kernel issues per 16-key step
(the tensor-core kernel is bound by instruction issue, docs/gpu-tests.md). Since the loop holds
alternatives (masked and unmasked steps, the softmax's rare slow path, the rescale), the count that
matters is its common path: the shortest way through the body, printed as "common path", with how
many of its instructions issue to the integer ALU pipe (the H200's limit for the 4-bit loops).

  pip download --no-deps nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm   # unzip; put bin/ on PATH
  cuobjdump -sass build-cuda/CMakeFiles/qsdpa.dir/src/cuda/attention_mma_d128_r8.cu.o > d128.sass
  python3 scripts/sass_loop.py d128.sass FamE3ELS3_3EEEv [--dump] [--tiles NT] [--prologue]  # E2M1:E2M1 (mxfp4)

Family numbers in the mangled names: 0 f16, 1 u4, 2 u8, 3 e2m1, 4 e4m3, 5 generic, 6 nv4 (nvfp4).
"""
import collections
import re
import sys


def functions(path):
    name, body = None, []
    for line in open(path):
        if "Function : " in line:
            if name:
                yield name, body
            name, body = line.split("Function : ")[1].strip(), []
            continue
        m = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
        if m and name:
            body.append((int(m.group(1), 16), m.group(2).strip()))
    if name:
        yield name, body


def hot_loop(body):
    index = {a: i for i, (a, _) in enumerate(body)}
    loops = []
    for i, (a, ins) in enumerate(body):
        m = re.search(r"BRA.*?0x([0-9a-f]+)", ins)
        # A loop's back edge is a predicated branch; unpredicated backward ones return from the
        # divergence handlers placed after the function's body.
        if m and ins.startswith("@") and int(m.group(1), 16) <= a and int(m.group(1), 16) in index:
            loops.append(body[index[int(m.group(1), 16)]:i + 1])
    hmma = lambda seg: sum("HMMA" in s for _, s in seg)
    loops = [l for l in loops if hmma(l)]
    if not loops:
        return []
    most = max(hmma(l) for l in loops)
    return min((l for l in loops if hmma(l) == most), key=len)


def common_path(seg):
    """Instructions on the shortest path from the loop's first instruction to its back branch."""
    index = {a: i for i, (a, _) in enumerate(seg)}
    dist, prev = [None] * len(seg), [None] * len(seg)
    dist[0] = 1
    for i, (_, ins) in enumerate(seg):  # forward branches only inside the body: one pass suffices
        if dist[i] is None:
            continue
        m = re.search(r"BRA.*?0x([0-9a-f]+)", ins)
        targets = []
        if m and int(m.group(1), 16) in index and index[int(m.group(1), 16)] > i:
            targets.append(index[int(m.group(1), 16)])
        if not (m and not ins.startswith("@")) and i + 1 < len(seg):
            targets.append(i + 1)
        for j in targets:
            if dist[j] is None or dist[j] > dist[i] + 1:
                dist[j], prev[j] = dist[i] + 1, i
    path, i = [], len(seg) - 1
    while i is not None:
        path.append(seg[i][1])
        i = prev[i]
    return dist[-1], path


# Opcodes that issue to the integer ALU pipe, which runs at half the FP32 rate on sm_80 / sm_90 (16
# lanes a scheduler): on the H200 the 4-bit loops wait on it (ncu, session 38: ALU pipe 63% of its
# peak while issuing on 61% of cycles, i.e. 52% of the instructions; these opcodes are 189 of the
# 369 on mxfp4's whole-SM common path, 51%). IMAD, IMUL and the FP16 / FP32 arithmetic go to the
# FMA pipes; VIADD's pipe is not known here (not counted).
ALU_OPS = {"LOP3", "PRMT", "SHF", "ISETP", "FSETP", "FSEL", "SEL", "FMNMX", "VIMNMX", "VIMNMX3",
           "VIADDMNMX", "LEA", "VOTE", "IADD3", "MOV", "P2R", "R2P", "PLOP3", "FCHK", "CSET", "IABS"}


def opcode(ins):
    return re.sub(r"^@!?U?P\w+ ", "", ins).split()[0].split(".")[0]


def main():
    path, pattern = sys.argv[1], sys.argv[2]
    for name, body in functions(path):
        if pattern not in name:
            continue
        seg = hot_loop(body)
        ops = collections.Counter(opcode(s) for _, s in seg)
        # Each 16-key step transposes P with 4 MOVM per row tile; a loop unrolled by hand holds several.
        steps = max(1, ops.get("MOVM", 0) // 4) if "--tiles" not in sys.argv else max(1, ops.get("MOVM", 0) // (4 * int(sys.argv[sys.argv.index("--tiles") + 1])))
        length, path = common_path(seg)
        local = sum(("LDL" in s) or ("STL" in s) for s in path)  # spill traffic on the common path
        alu = sum(opcode(s) in ALU_OPS for s in path)
        print(f"{name}: {len(seg)} instructions in the hot loop, {steps} step(s): {len(seg) // steps} per 16-key step; "
              f"common path {length} ({local} local loads/stores, {alu} on the ALU pipe)")
        print("  " + " ".join(f"{k}:{v}" for k, v in ops.most_common()))
        if "--prologue" in sys.argv and seg:
            # Everything before the loop's first instruction, alternatives included (q's dtypes, the
            # cluster setup): an upper bound of what a block issues before its first step.
            before = [ins for a, ins in body if a < seg[0][0]]
            count = lambda op: sum(op in ins for ins in before)
            print(f"  prologue: {len(before)} instructions before the loop, {count('BAR.SYNC')} barriers, "
                  f"{count('LDG')} global loads, {count('LDS')} shared loads")
        if "--dump" in sys.argv:
            for a, s in seg:
                print(f"  {a:x} {s}")


if __name__ == "__main__":
    main()
