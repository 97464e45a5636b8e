cd /work/main
for bl in 8 1; do
JAX_PLATFORMS=cpu .venv/bin/python benchmarks/eval_demo_stage.py --config experiments/demo.py:cpu --workdir runs/demo_v13 --stage sft \
  --set n_reasoning=0 --set n_vqa=384 --set n_pope=0 --set n_wise=0 --set n_t2i_per_tag=0 \
  --set text_sampler.block_length=$bl --out /tmp/t2i_probe/vqa_bl$bl 2>&1 | grep "^\[eval" | sed 's/n_reasoning.*n_t2i_per_tag=0//'
.venv/bin/python benchmarks/count_consistency.py /tmp/t2i_probe/vqa_bl$bl/answers.jsonl --max_objects 2
done
