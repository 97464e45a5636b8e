"""sw_gpu with the 'matched' VQA CoT (`data.shapesworld.vqa_cot='matched'`,
`language.question`): a shape count's counting sentence names the shape in the singular word of
its listing ("The shapes: a circle in the top. Counting the circle shapes: there is 1."), where
'factored' writes the plural ("Counting the circles"), a SentencePiece token unrelated to the
listing's "circle". Over eight GPU runs shape counts were right 0.32-0.82 of the time, color
counts 0.81-0.91 and "how many shapes" ~1.0 (BENCHMARKS.md): the one count whose target word is
not the listing's word is the one that fails.

GPU run 9 (BENCHMARKS.md): shape counts 0.64 (SFT) and 0.70 (final) on the test split, inside
the earlier range, with the same errors ("a circle in the bottom right. Counting the circle
shapes: there are 0."); VQA 0.906 / 0.914. The token mismatch is not the cause; 'factored'
stays the default.

    # bash benchmarks/gpu_background.sh start \
    #   "gpu|bash benchmarks/gpu_sw_run.sh experiments/sw_gpu_matched.py"
"""

def get_config(arg=None):
    from mmada_jax.demo import add_stage_override, demo_config
    return add_stage_override(demo_config("gpu"), "data.shapesworld.vqa_cot=matched")
