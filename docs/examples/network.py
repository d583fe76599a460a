# spipy's programming example (its phase.phmodel and phase.phexec modules) in PRNF: run it
# in a folder holding spipy's pattern.npy and pat_mask.npy (123 x 123, centre at pixel 61).
from prnf_core import phexec, phmodel

config_input = {"pattern_path": "pattern.npy", "mask_path": "pat_mask.npy", "center": [61, 61],
                "center_mask": 5, "edge_mask": None, "subtract_percentile": False,
                "fixed_support_r": None, "background": False, "initial_model": None}
l1_0 = phmodel.pInput(config_input)
l1_1 = phmodel.pInput(config_input)
l2_0 = phmodel.HIO(150, 85, 0.9).after(l1_0)      # Fienup's feedback: spipy wrote 0.05
l2_1 = phmodel.ERA(150, 85).after(l1_1)
l2_2 = phmodel.RAAR(150, 85, 0.8).after(l1_1)
lm = phmodel.pMerge().after(l2_0).after(l2_1).after(l2_2)
l4 = phmodel.DM(100, 85).after(lm)
l5 = phmodel.HIO(200, 85, 0.9).after(l4)
l6 = phmodel.ERA(100, 85).after(l5)      # end on the support-constrained estimate
l7 = phmodel.pOutput().after(l6)

runner = phexec.Runner(inputnodes=[l1_0, l1_1], outputnode=l7)
out = runner.run(repeat=4, seed=1)      # the merged result, a dict
print(f"final eMod of the 4 repeats: {out['final_eMod'].round(3)}")
runner.save_h5(out, "result.h5")
runner.plot_result(out, "result.png")
runner.dump_model("model.json")         # rerun it: prnf run model.json --out again.h5
