# Scaling, once per subject: generic model + static trial -> model_scaled.osim (measurement scaling + marker
# placement) and the per-marker error table; the step fails above the subject's error thresholds. A model of
# some segments only gets their share of the body mass (--generic-body-mass-kg: arguments.smk). With
# muscle_model: degroote (the default) the same job also writes model_scaled_degroote.osim, which SO and CMC use.
# The subject's scaling settings reach `pimsk scale` as settings.json, written by the rule from a parameter (an
# edit of them reruns scaling and what follows) and kept beside the results.

rule scale:
    input:
        model=lambda wc: generic_model(wc.subject),
        trc=static_trc,
    output:
        model=f"{R}/{{subject}}/scale/model_scaled.osim",
        marker_errors=f"{R}/{{subject}}/scale/marker_errors.tsv",
        setup=f"{R}/{{subject}}/scale/setup_scale.xml",
        settings=SCALE_SETTINGS,
    params:
        out_dir=lambda wc, output: os.path.dirname(output.model),
        static=lambda wc: static_trial(wc.subject),
        settings=lambda wc: quoted(json_text(scale_settings(wc.subject))),
        options=lambda wc: scale_args(wc.subject),
    log:
        log_path("scale", per_trial=False),
    benchmark:
        bench_path("scale", per_trial=False)
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    shell:
        "printf '%s\\n' {params.settings} > {output.settings:q} && "
        "pimsk scale --model {input.model:q} --trc {input.trc:q} {params.options} --out {params.out_dir:q} "
        "--log {log:q} --subject {wildcards.subject} --trial {params.static} >> {log:q} 2>&1"
