# Synthetic (demo) subjects: `pimsk synth` writes every trial's C3D file, the generic model and the ground truth
# under results/<subject>/synth/. One rule per synthetic subject (rule synth_<subject>), because the C3D files a
# subject gets are named in its subject file: declaring them lets rule c3d find its input by path.
# truth/truth.json is written last, so it doubles as the mark of a complete run. The subject file is a parameter,
# not an input: only the fields synth reads (params.settings) rerun it when they change.

for _sid in [s for s in SUBJECTS if is_synth(s)]:

    rule:
        name: f"synth_{_sid}"
        output:
            c3d=synth_c3d_files(_sid),
            model=f"{synth_dir(_sid)}/model_generic.osim",
            truth=f"{synth_dir(_sid)}/truth/truth.json",
        params:
            subject_file=quoted(subject_file(_sid)),
            settings=synth_settings(_sid),
            options=synth_options(),
            out_dir=lambda wc, output: quoted(os.path.dirname(output.model)),
        log:
            f"{R}/logs/{_sid}/synth.log",
        benchmark:
            f"{R}/benchmarks/{_sid}/synth.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        shell:
            "pimsk synth --config {params.subject_file} --out {params.out_dir} {params.options} > {log:q} 2>&1"
