cd /work/main
for g in 0.0 3.5; do for st in 8 16; do
JAX_PLATFORMS=cpu .venv/bin/python benchmarks/eval_demo_stage.py --config experiments/demo.py:cpu --workdir runs/demo_v13 --stage sft \
  --set n_reasoning=0 --set n_vqa=0 --set n_pope=0 --set n_wise=0 --set n_t2i_per_tag=8 \
  --set image_sampler.guidance_scale=$g --set image_sampler.steps=$st --out /tmp/t2i_probe/g${g}_s${st} 2>&1 | grep "^\[eval"
done; done
