# The learning stage of every subject with a learning section (step learn; settings: learn_arguments.smk):
#
#   emg       raw EMG of all the subject's learning trials -> envelopes at the IK times (one normalisation
#             reference over all of them, never per trial)
#   geometry  path surrogate (MTU length polynomials, moment arms by differentiation) of the labels model
#   dataset   envelopes + IK angles + SO/CMC forces (+ ID moments) -> windows or gait cycles (.npz)
#   train     one run per method and study run (leave-one-trial-out or the subject's protocol; lambda and the
#             baselines' C chosen on validation data); one log line per epoch in the job's log
#   evaluate  test-fold metrics per study (methods, training_size, network_depth); on a synthetic subject also
#             the errors against the TRUE values (truth_metrics.csv, truth_summary.csv beside summary.csv)
#   figures   results/figures/<subject>/*.png, each in `snakemake --report` with its caption (workflow/report/)
#
# Results under <results_dir>/learn/<subject>/, logs under <results_dir>/logs/<subject>/learn/, timings under
# <results_dir>/benchmarks/<subject>/learn/.

FIGURES = ("predictions", "methods", "training_curves", "training_size", "network_depth")


wildcard_constraints:
    run=r"[a-z]+(_frac[0-9.]+|_blocks[0-9]+)?",
    study="|".join(STUDIES),


def learn_log(step: str) -> str:
    return f"{R}/logs/{{subject}}/learn/{step}.log"


def learn_bench(step: str) -> str:
    return f"{R}/benchmarks/{{subject}}/learn/{step}.tsv"


def figure_output(name: str):
    """One figure of the report: results/figures/<subject>/<name>.png with its caption workflow/report/<name>.rst."""
    return report(f"{R}/figures/{{subject}}/{name}.png", caption=f"../report/{name}.rst", category="Learning",
                  subcategory="{subject}", labels={"subject": "{subject}", "figure": name})


rule emg:
    input:
        c3d=lambda wc: expand(rules.c3d.output.report, subject=wc.subject, trial=learn_trials(wc.subject)),
        kinematics=lambda wc: expand(rules.ik.output.coordinates, subject=wc.subject, trial=learn_trials(wc.subject)),
        mvc=lambda wc: mvc_inputs(wc.subject),
    output:
        envelopes=directory(f"{LEARN}/emg/envelopes"),
        reference=f"{LEARN}/emg/emg_reference.json",
    params:
        raw=lambda wc: " ".join(quoted(emg_raw(wc.subject, t)) for t in learn_trials(wc.subject)),
        trials=lambda wc: " ".join(learn_trials(wc.subject)),
        options=lambda wc: emg_args(wc.subject),
    log:
        learn_log("emg"),
    benchmark:
        learn_bench("emg")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "pimsk emg {params.raw} --trial-names {params.trials} --times-from {input.kinematics:q} "
        "{params.options} --out-dir {output.envelopes:q} --reference-out {output.reference:q} "
        "--subject {wildcards.subject} > {log:q} 2>&1"


rule geometry:
    input:
        model_scaled=rules.scale.output.model,  # the scale job writes the labels model beside it
    output:
        surrogate=f"{LEARN}/geometry/surrogate.json",
        fit_report=f"{LEARN}/geometry/surrogate_fit.csv",
    params:
        model=lambda wc: labels_model(wc.subject),
        options=lambda wc: geometry_args(wc.subject),
    log:
        learn_log("geometry"),
    benchmark:
        learn_bench("geometry")
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        "pimsk geometry {params.model} {params.options} --out {output.surrogate:q} "
        "--report {output.fit_report:q} > {log:q} 2>&1"


rule dataset:
    input:
        unpack(dataset_inputs),
        envelopes=rules.emg.output.envelopes,
    output:
        spec=f"{LEARN}/dataset/spec.json",
        samples=f"{LEARN}/dataset/samples.npz",
    params:
        spec=lambda wc: quoted(json_text(dataset_spec(wc.subject))),
    log:
        learn_log("dataset"),
    benchmark:
        learn_bench("dataset")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "printf '%s\\n' {params.spec} > {output.spec:q} && "
        "pimsk dataset --spec {output.spec:q} --base-dir . --out {output.samples:q} > {log:q} 2>&1"


rule train:
    input:
        samples=rules.dataset.output.samples,
        surrogate=rules.geometry.output.surrogate,
    output:
        config=f"{LEARN}/runs/{{run}}.json",
        run=directory(f"{LEARN}/runs/{{run}}"),
    params:
        config=lambda wc: quoted(json_text(run_config(wc.subject, wc.run))),
        model=lambda wc: labels_model(wc.subject),
        chain=lambda wc: chain_arg(wc.subject),
        options=lambda wc: train_args(wc.subject, wc.run),
    log:
        f"{R}/logs/{{subject}}/learn/train_{{run}}.log",
    benchmark:
        f"{R}/benchmarks/{{subject}}/learn/train_{{run}}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=120,
    shell:
        "printf '%s\\n' {params.config} > {output.config:q} && "
        "pimsk train --dataset {input.samples:q} --config {output.config:q} --out {output.run:q} "
        "--surrogate \"$(realpath {input.surrogate:q})\" --muscle-parameters \"$(realpath {params.model})\" "
        "{params.chain} {params.options} > {log:q} 2>&1"


rule evaluate:
    input:
        samples=rules.dataset.output.samples,
        runs=lambda wc: expand(rules.train.output.run, subject=wc.subject,
                               run=[r for r, _ in study_runs(wc.study)]),
    output:
        metrics=f"{LEARN}/evaluate/{{study}}/metrics.csv",
        summary=f"{LEARN}/evaluate/{{study}}/summary.csv",
        anova=f"{LEARN}/evaluate/{{study}}/anova.csv",
    params:
        out_dir=lambda wc, output: os.path.dirname(output.summary),
        names=lambda wc: " ".join(quoted(n) for _, n in study_runs(wc.study)),
        truth=lambda wc: f"--truth-dir {quoted(synth_dir(wc.subject) + '/truth')}" if is_synth(wc.subject) else "",
    log:
        f"{R}/logs/{{subject}}/learn/evaluate_{{study}}.log",
    benchmark:
        f"{R}/benchmarks/{{subject}}/learn/evaluate_{{study}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "rm -rf {params.out_dir:q}/predictions && "
        "pimsk evaluate --dataset {input.samples:q} --runs {input.runs:q} --names {params.names} "
        "--out {params.out_dir:q} {params.truth} > {log:q} 2>&1"


def coordinates_arg(subject: str) -> str:
    """`--coordinates A B`: the angle outputs (drawn in degrees), or ''."""
    coords = learn_coordinates(subject)
    return f"--coordinates {' '.join(quoted(c) for c in coords)}" if coords else ""


def _evaluation(study: str):
    return lambda wc: expand(rules.evaluate.output.summary, subject=wc.subject, study=study)[0]


rule figures:
    input:
        samples=rules.dataset.output.samples,
        methods=_evaluation("methods"),
        training_size=_evaluation("training_size"),
        network_depth=_evaluation("network_depth"),
        runs=lambda wc: expand(rules.train.output.run, subject=wc.subject, run=list(_lconf()["methods"])),
    output:
        **{name: figure_output(name) for name in FIGURES},
    params:
        out_dir=lambda wc, output: os.path.dirname(output.predictions),
        runs=lambda wc: " ".join(f"{m}={quoted(expand(rules.train.output.run, subject=wc.subject, run=m)[0])}"
                                 for m in _lconf()["methods"] if m in ("picnn", "cnn")),
        coordinates=lambda wc: coordinates_arg(wc.subject),
    log:
        learn_log("figures"),
    benchmark:
        learn_bench("figures")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "pimsk figures --dataset {input.samples:q} --methods {input.methods:q} "
        "--training-size {input.training_size:q} --network-depth {input.network_depth:q} "
        "--histories {params.runs} {params.coordinates} --out-dir {params.out_dir:q} --subject {wildcards.subject} "
        "> {log:q} 2>&1"


rule figures_truth:
    input:
        methods=_evaluation("methods"),
    output:
        truth=figure_output("truth"),
    params:
        coordinates=lambda wc: coordinates_arg(wc.subject),
    log:
        learn_log("figures_truth"),
    benchmark:
        learn_bench("figures_truth")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "pimsk figures --truth {input.methods:q} {params.coordinates} --out-dir \"$(dirname {output.truth:q})\" "
        "--subject {wildcards.subject} > {log:q} 2>&1"


def learning_targets() -> list[str]:
    """Every figure of every learning subject (the truth figure on synthetic subjects)."""
    targets = []
    for s in learning_subjects():
        targets += [expand(getattr(rules.figures.output, name), subject=s)[0] for name in FIGURES]
        if is_synth(s):
            targets.append(expand(rules.figures_truth.output.truth, subject=s)[0])
    return targets
