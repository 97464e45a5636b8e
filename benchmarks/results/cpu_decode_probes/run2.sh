cd /work/main
for cfg in "5.0 8 1.0" "8.0 8 1.0" "12.0 8 1.0" "5.0 8 0.5" "5.0 12 1.0" "3.5 4 1.0" "5.0 8 2.0"; do set -- $cfg
JAX_PLATFORMS=cpu .venv/bin/python benchmarks/eval_demo_stage.py --config experiments/demo.py:cpu --workdir runs/demo_v13 --stage sft \
  --set n_reasoning=0 --set n_vqa=0 --set n_pope=0 --set n_wise=0 --set n_t2i_per_tag=8 \
  --set image_sampler.guidance_scale=$1 --set image_sampler.steps=$2 --set image_sampler.temperature=$3 --out /tmp/t2i_probe/g$1_s$2_t$3 2>&1 | grep "^\[eval" | sed 's/n_reasoning.*n_t2i_per_tag=8//'
python3 -c "import json;d=json.load(open('/tmp/t2i_probe/g$1_s$2_t$3/report.json'))['results']['t2i'];print(d['object_f1'],d['per_tag'])"
done
