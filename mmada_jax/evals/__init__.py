"""mmada_jax.evals: readers and scorers for the benchmarks the paper reports (spec section 7).

Pure Python/NumPy, no model code: the lead's eval loop generates outputs and hands them here.
  answers       final-answer extraction and numeric/string matching (shared with rl.rewards)
  gsm8k, mmlu, pope, vqav2        text and understanding scorers
  geneval       GenEval rules on detections; scene_geneval: the same on parsed scenes
  scene_types   ParsedObject (shape, color, size, row, col), what scene parsers produce
  wise          WISE-style knowledge-attribute score and WiScore
  report        JSON report writer
  registry      benchmarks by name (read + score)
"""
