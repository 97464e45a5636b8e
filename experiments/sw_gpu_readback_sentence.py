"""sw_gpu with each readback row's visible prefix ending after the first worked sentence of the
answer (`data.readback_cut='first_sentence'`, `rows.sentence_cuts`; at least 30% of the answer):
the listing or inventory is visible and the scored rest is the reasoning that follows from it
("Counting the circles: there are 2. </think> 2"), never the tail of a listing the model cannot
see. With the default cut (anywhere in the last half, image hidden) 17% of the VQA cuts fall
inside the listing or inventory (counting 15%, position 27%, color 20%, existence 8%; measured
on 3230 generated gpu-variant questions with the demo's SentencePiece model), where the rest of
the listing is scored with nothing to read it from.

GPU run 7 (BENCHMARKS.md): SFT VQA 0.919 (final 0.919); counts follow the listing 86% of the
time with 9 right listings miscounted (run 6: 15), but 17 of 128 listings write an entry twice
("the bottom right and the bottom right", then "there are 4") against 2 in run 6, so counting is
no better. Run 7 used an earlier `sentence_cuts` that also cut after a caption's one worked
sentence, so short captions were readback rows (a caption to write without its image); captions
now keep their image.

GPU run 8, rerun with captions keeping their image: no doubled entries (0 of 128), but shape
counts 0.48 and position 0.82 (position answers name another object of the inventory); SFT VQA
0.857, final 0.841. The first-sentence cut is not the default.

    # bash benchmarks/gpu_background.sh start \
    #   "gpu|bash benchmarks/gpu_sw_run.sh experiments/sw_gpu_readback_sentence.py"
"""

def get_config(arg=None):
    from mmada_jax.demo import demo_config
    c = demo_config("gpu")
    c.stage_overrides.sft = ("data.readback_prob=0.25;data.readback_cut=first_sentence;"
                             "data.readback_min_prefix=0.3")
    return c
