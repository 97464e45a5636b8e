"""sw_gpu with the 'filtered' VQA CoT (`data.shapesworld.vqa_cot='filtered'`,
`language.question`): a color or shape count lists only the shapes it counts, in the form "how
many shapes" uses ("I see circles in the top left and the center. Counting the circles: there
are 2."), so the count is the number of entries written.

Why: over ten GPU runs "how many shapes" (count every listed entry) was right 0.95-1.0 of the
time, color counts 0.70-0.91 and shape counts 0.32-0.82 (count the entries that match). Run 10's
readback probe (BENCHMARKS.md) re-decoded each answer's conclusion with the image masked: the
model then answered position questions with the last listed object's cell 110 of 128 times and
counted worse (0.70 against 0.78): it does not look things up in its own text, it reads them off
the image. 'filtered' leaves the matching to the image, where listings are 86-97% right.

Result (GPU run 11, BENCHMARKS.md): worse. VQA 0.802 (SFT 0.818), counting 0.70, position 0.77;
"how many circles" with none present is answered with invented circles (5 of 21 right).

    # bash benchmarks/gpu_background.sh start \
    #   "gpu|bash benchmarks/gpu_sw_run.sh experiments/sw_gpu_filtered.py"
"""


def get_config(arg=None):
    from mmada_jax.demo import add_stage_override, demo_config
    return add_stage_override(demo_config("gpu"), "data.shapesworld.vqa_cot=filtered")
