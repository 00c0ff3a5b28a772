# Inverse dynamics per dynamic trial over its analysis window (time_range_s): coordinates.mot + model_scaled.osim
# (with the trial's locked coordinates: --lock) (+ the trial's external loads where it has force plates) ->
# moments.sto (N m). Subject-file settings: inverse_dynamics.lowpass_hz.

rule id:
    input:
        model=scaled_model,
        coordinates=rules.ik.output.coordinates,
        c3d=rules.c3d.output.report,  # conversion.json: external_loads.xml lies beside it where plates exist
    output:
        moments=f"{R}/{{subject}}/{{trial}}/id/moments.sto",
        setup=f"{R}/{{subject}}/{{trial}}/id/setup_id.xml",
    params:
        out_dir=lambda wc, output: os.path.dirname(output.moments),
        external_loads=external_loads_arg,
        options=lambda wc: id_args(wc.subject, wc.trial),
    log:
        log_path("id"),
    benchmark:
        bench_path("id")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        "pimsk id --model {input.model:q} --coordinates {input.coordinates:q} {params.external_loads} "
        "{params.options} --out {params.out_dir:q} --log {log:q} --subject {wildcards.subject} "
        "--trial {wildcards.trial} >> {log:q} 2>&1"
