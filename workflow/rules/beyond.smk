# Step beyond ([F6]: beyond one subject; settings: beyond_arguments.smk, config section beyond):
#
#   beyond_emg          raw EMG of a subject's study trials (+ the MVC trial) -> envelopes at the IK times
#   beyond_geometry     path surrogate of the subject's scaled model (or of the generic model: the generic PI-CNN)
#   beyond_dataset      envelopes + IK angle + the synthetic TRUE forces -> windows (.npz)
#   beyond_identify     `pimsk identify` on the identify subject: identified (label-free, parameters identified),
#                       generic (--no-identify), supervised (--supervised); leave the test trial out
#   beyond_transfer     `pimsk transfer` sources -> target with a fraction of its data: generic / scratch / transfer
#   beyond_*_figures    `pimsk figures`: results/figures/beyond/*.png (each in `snakemake --report`, its own
#                       category, caption workflow/report/beyond_*.rst) + a table per study (CSV and JSON) under
#                       results/beyond/<study>/
#
# The subjects' synth, c3d, scale and IK jobs are the workflow's own rules. Results under <results_dir>/beyond/,
# logs under <results_dir>/logs/beyond/, timings under <results_dir>/benchmarks/beyond/.

BEYOND_FIGURES = {  # figure -> report category
    "identification_parameters": "Parameter identification",
    "identification_forces": "Parameter identification",
    "label_free": "Label-free training",
    "transfer": "Transfer to an unseen subject",
}


wildcard_constraints:
    use="|".join(USES),
    which="scaled|generic",
    arm="|".join(IDENTIFY_ARMS),


def beyond_figure(name: str):
    """results/figures/beyond/<name>.png in the report, with its caption workflow/report/beyond_<name>.rst."""
    return report(f"{R}/figures/beyond/{name}.png", caption=f"../report/beyond_{name}.rst",
                  category=BEYOND_FIGURES[name], labels={"study": BEYOND_FIGURES[name], "figure": name})


rule beyond_emg:
    input:
        c3d=lambda wc: expand(rules.c3d.output.report, subject=wc.subject, trial=emg_trials(wc.use)),
        kinematics=lambda wc: expand(rules.ik.output.coordinates, subject=wc.subject, trial=emg_trials(wc.use)),
    output:
        envelopes=directory(f"{BEYOND}/{{subject}}/{{use}}/emg"),
        reference=f"{BEYOND}/{{subject}}/{{use}}/emg_reference.json",
    params:
        raw=lambda wc: " ".join(quoted(emg_raw(wc.subject, t)) for t in emg_trials(wc.use)),
        trials=lambda wc: " ".join(emg_trials(wc.use)),
        options=lambda wc: beyond_emg_args(wc.use),
        mvc=lambda wc: f"--mvc {quoted(emg_raw(wc.subject, mvc_trial(wc.use)))}" if mvc_trial(wc.use) else "",
    log:
        f"{R}/logs/beyond/{{subject}}/{{use}}_emg.log",
    benchmark:
        f"{R}/benchmarks/beyond/{{subject}}/{{use}}_emg.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "pimsk emg {params.raw} --trial-names {params.trials} --times-from {input.kinematics:q} {params.options} "
        "{params.mvc} --out-dir {output.envelopes:q} --reference-out {output.reference:q} "
        "--subject {wildcards.subject} > {log:q} 2>&1"


rule beyond_geometry:
    input:
        # scaled: the scale job writes the SO model beside model_scaled.osim; generic: pimsk synth's model
        model=lambda wc: (expand(rules.scale.output.model, subject=wc.subject)[0] if wc.which == "scaled"
                          else f"{synth_dir(wc.subject)}/model_generic.osim"),
    output:
        surrogate=f"{BEYOND}/{{subject}}/geometry/{{which}}.json",
        fit_report=f"{BEYOND}/{{subject}}/geometry/{{which}}_fit.csv",
    params:
        model=lambda wc: quoted(geometry_model(wc.subject, wc.which)),
        options=lambda wc: beyond_geometry_args(wc.subject),
    log:
        f"{R}/logs/beyond/{{subject}}/geometry_{{which}}.log",
    benchmark:
        f"{R}/benchmarks/beyond/{{subject}}/geometry_{{which}}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        "pimsk geometry {params.model} {params.options} --moment-arms difference --out {output.surrogate:q} "
        "--report {output.fit_report:q} > {log:q} 2>&1"


rule beyond_dataset:
    input:
        envelopes=rules.beyond_emg.output.envelopes,
        coordinates=lambda wc: expand(rules.ik.output.coordinates, subject=wc.subject, trial=use_trials(wc.use)),
        truth=lambda wc: f"{synth_dir(wc.subject)}/truth/truth.json",
    output:
        spec=f"{BEYOND}/{{subject}}/{{use}}/dataset/spec.json",
        samples=f"{BEYOND}/{{subject}}/{{use}}/dataset/samples.npz",
    params:
        spec=lambda wc: quoted(json_text(beyond_dataset_spec(wc.subject, wc.use))),
    log:
        f"{R}/logs/beyond/{{subject}}/{{use}}_dataset.log",
    benchmark:
        f"{R}/benchmarks/beyond/{{subject}}/{{use}}_dataset.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "printf '%s\\n' {params.spec} > {output.spec:q} && "
        "pimsk dataset --spec {output.spec:q} --base-dir . --out {output.samples:q} > {log:q} 2>&1"


def _identify_config_file(wc) -> str:
    return f"{BEYOND}/{wc.subject}/identify/runs/{wc.arm}.json"


rule beyond_identify:
    input:
        samples=expand(rules.beyond_dataset.output.samples, use="identify", allow_missing=True),
        envelopes=expand(rules.beyond_emg.output.envelopes, use="identify", allow_missing=True),
        surrogate=expand(rules.beyond_geometry.output.surrogate, which="scaled", allow_missing=True),
        model_scaled=rules.scale.output.model,
    output:
        config=f"{BEYOND}/{{subject}}/identify/runs/{{arm}}.json",
        run=directory(f"{BEYOND}/{{subject}}/identify/runs/{{arm}}"),
    params:
        config=lambda wc: quoted(json_text(identify_config(wc.subject, _identify_config_file(wc)))),
        flags=lambda wc: IDENTIFY_ARMS[wc.arm],
        fold=lambda wc: quoted(_bconf()["identify"]["test_trial"]),
    log:
        f"{R}/logs/beyond/{{subject}}/identify_{{arm}}.log",
    benchmark:
        f"{R}/benchmarks/beyond/{{subject}}/identify_{{arm}}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        "printf '%s\\n' {params.config} > {output.config:q} && "
        "pimsk identify --dataset {input.samples:q} --config {output.config:q} --out {output.run:q} "
        "--fold {params.fold} {params.flags} > {log:q} 2>&1"


def _transfer_datasets(wildcards=None) -> list[str]:
    return [expand(rules.beyond_dataset.output.samples, subject=s, use="transfer")[0] for s in transfer_subjects()]


rule beyond_transfer:
    input:
        samples=_transfer_datasets,
        generic=lambda wc: expand(rules.beyond_geometry.output.surrogate, subject=_bconf()["transfer"]["sources"][0],
                                  which="generic"),
        target=lambda wc: expand(rules.beyond_geometry.output.surrogate, subject=_bconf()["transfer"]["target"],
                                 which="scaled"),
    output:
        config=f"{BEYOND}/transfer/config.json",
        summary=f"{BEYOND}/transfer/runs/summary.csv",
        metrics=f"{BEYOND}/transfer/runs/metrics.csv",
    params:
        config=lambda wc, output: quoted(json_text(transfer_config(output.config))),
        out_dir=lambda wc, output: os.path.dirname(output.summary),
        fraction=lambda wc: repr(float(_bconf()["transfer"]["fraction"])),
    log:
        f"{R}/logs/beyond/transfer.log",
    benchmark:
        f"{R}/benchmarks/beyond/transfer.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        "printf '%s\\n' {params.config} > {output.config:q} && "
        "pimsk transfer --config {output.config:q} --out {params.out_dir:q} --fraction {params.fraction} "
        "> {log:q} 2>&1"


def _identify_run(subject: str, arm: str) -> str:
    return expand(rules.beyond_identify.output.run, subject=subject, arm=arm)[0]


def _skip_frames() -> int:
    return int((_bconf()["identify"].get("settings") or {}).get("skip_frames", 10))


rule beyond_identification_figures:
    input:
        identified=lambda wc: _identify_run(identify_subject(), "identified"),
        generic=lambda wc: _identify_run(identify_subject(), "generic"),
        samples=lambda wc: expand(rules.beyond_dataset.output.samples, subject=identify_subject(), use="identify"),
    output:
        parameters_png=beyond_figure("identification_parameters"),
        forces_png=beyond_figure("identification_forces"),
        parameters=f"{BEYOND}/identification/parameters.csv",
        parameters_json=f"{BEYOND}/identification/parameters.json",
        forces=f"{BEYOND}/identification/forces.csv",
        forces_json=f"{BEYOND}/identification/forces.json",
    params:
        truth=lambda wc: quoted(f"{synth_dir(identify_subject())}/truth"),
        test=lambda wc: quoted(_bconf()["identify"]["test_trial"]),
        skip=lambda wc: _skip_frames(),
        subject=lambda wc: identify_subject(),
    log:
        f"{R}/logs/beyond/identification_figures.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "pimsk figures --identification {input.identified:q} {input.generic:q} --dataset {input.samples:q} "
        "--truth-dir {params.truth} --test-trial {params.test} --skip-frames {params.skip} "
        "--out-dir \"$(dirname {output.parameters_png:q})\" --tables \"$(dirname {output.parameters:q})\" "
        "--subject {params.subject} > {log:q} 2>&1"


rule beyond_label_free_figures:
    input:
        label_free=lambda wc: _identify_run(label_free_subject(), "identified"),
        supervised=lambda wc: _identify_run(label_free_subject(), "supervised"),
        samples=lambda wc: expand(rules.beyond_dataset.output.samples, subject=label_free_subject(), use="identify"),
    output:
        png=beyond_figure("label_free"),
        table=f"{BEYOND}/label_free/label_free.csv",
        json=f"{BEYOND}/label_free/label_free.json",
    params:
        truth=lambda wc: quoted(f"{synth_dir(label_free_subject())}/truth"),
        test=lambda wc: quoted(_bconf()["identify"]["test_trial"]),
        skip=lambda wc: _skip_frames(),
        subject=lambda wc: label_free_subject(),
    log:
        f"{R}/logs/beyond/label_free_figures.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "pimsk figures --label-free {input.label_free:q} {input.supervised:q} --dataset {input.samples:q} "
        "--truth-dir {params.truth} --test-trial {params.test} --skip-frames {params.skip} "
        "--out-dir \"$(dirname {output.png:q})\" --tables \"$(dirname {output.table:q})\" "
        "--subject {params.subject} > {log:q} 2>&1"


rule beyond_transfer_figures:
    input:
        summary=rules.beyond_transfer.output.summary,
    output:
        png=beyond_figure("transfer"),
        table=f"{BEYOND}/transfer/transfer.csv",
        json=f"{BEYOND}/transfer/transfer.json",
    params:
        subject=lambda wc: _bconf()["transfer"]["target"],
    log:
        f"{R}/logs/beyond/transfer_figures.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "pimsk figures --transfer {input.summary:q} --out-dir \"$(dirname {output.png:q})\" "
        "--tables \"$(dirname {output.table:q})\" --subject {params.subject} > {log:q} 2>&1"


try:
    check_beyond()
except PimskError as exc:
    _fail(exc)
