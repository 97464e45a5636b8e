import sys, os, json, time
import jax
from mmada_jax import demo, assets
wd = sys.argv[1]; init = sys.argv[2]; budget = float(sys.argv[3])
dc = demo.demo_config("cpu")
cfgs = {s: demo._stage_config(s, "cpu", wd, dc) for s in demo.STAGES}
text_tok = assets.text_tokenizer(cfgs["pretrain"]); image_tok = assets.image_tokenizer(cfgs["pretrain"])
demo.build_code_caches(cfgs, image_tok, os.path.join(wd, "assets"))
cfg = cfgs["grpo"]; cfg.rl.init_from = init
for kv in sys.argv[4:]:
    k, v = kv.split("="); exec(f"cfg.{k} = {v}")
from mmada_jax.rl.trainer import UniGRPO
t = time.time()
UniGRPO(cfg, os.path.join(wd, "grpo"), jax.devices()[:1], text_tok, image_tok).run(budget_s=budget)
print("grpo s", time.time() - t)
res = demo.run_eval("grpo", cfg, os.path.join(wd, "grpo"), dc.eval, (text_tok, image_tok))
print(json.dumps({k: {m: v[m] for m in ("accuracy", "overall", "object_f1", "f1") if m in v} for k, v in res.items() if isinstance(v, dict)}))
