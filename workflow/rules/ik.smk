# Inverse kinematics per dynamic trial, over its analysis window (time_range_s) or with ik.whole_trial (default
# for a synthetic subject) the whole recording: markers.trc + model_scaled.osim (with the trial's locked
# coordinates: --lock, a seat or a brace) -> coordinates.mot (deg) and the marker error tables. The marker and coordinate weights (arguments.smk: ik_settings) reach `pimsk ik` as settings.json,
# written by the rule from a parameter (an edit reruns this trial's IK) and kept beside the results.

rule ik:
    input:
        model=scaled_model,
        trc=rules.c3d.output.trc,
    output:
        coordinates=f"{R}/{{subject}}/{{trial}}/ik/coordinates.mot",
        marker_errors=f"{R}/{{subject}}/{{trial}}/ik/marker_errors.tsv",
        setup=f"{R}/{{subject}}/{{trial}}/ik/setup_ik.xml",
        settings=IK_SETTINGS,
    params:
        out_dir=lambda wc, output: os.path.dirname(output.coordinates),
        settings=lambda wc: quoted(json_text(ik_settings(wc.subject, wc.trial))),
        options=lambda wc: ik_args(wc.subject, wc.trial),
    log:
        log_path("ik"),
    benchmark:
        bench_path("ik")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "printf '%s\\n' {params.settings} > {output.settings:q} && "
        "pimsk ik --model {input.model:q} --trc {input.trc:q} {params.options} --out {params.out_dir:q} "
        "--log {log:q} --subject {wildcards.subject} --trial {wildcards.trial} >> {log:q} 2>&1"
