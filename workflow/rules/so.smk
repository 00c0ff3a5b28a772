# Static optimization per dynamic trial over its analysis window (time_range_s): coordinates.mot + the labels
# model (model_scaled_degroote.osim unless muscle_model: original; the trial's set-up applied: --lock,
# --keep-muscles) (+ external loads) -> muscle activations and forces (N). Subject-file settings (so.*): method,
# tendon, activation_exponent, lowpass_hz, actuators (reserve/residual force set files), use_muscle_physiology.

rule so:
    input:
        model_scaled=rules.scale.output.model,  # the scale job writes the labels model beside it
        coordinates=rules.ik.output.coordinates,
        c3d=rules.c3d.output.report,
    output:
        activations=f"{R}/{{subject}}/{{trial}}/so/so_StaticOptimization_activation.sto",
        forces=f"{R}/{{subject}}/{{trial}}/so/so_StaticOptimization_force.sto",
        setup=f"{R}/{{subject}}/{{trial}}/so/setup_so.xml",
    params:
        out_dir=lambda wc, output: os.path.dirname(output.forces),
        model=lambda wc: labels_model(wc.subject),
        external_loads=external_loads_arg,
        options=lambda wc: so_args(wc.subject, wc.trial),
    log:
        log_path("so"),
    benchmark:
        bench_path("so")
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        "pimsk so --model {params.model} --coordinates {input.coordinates:q} {params.external_loads} "
        "{params.options} --out {params.out_dir:q} --log {log:q} --subject {wildcards.subject} "
        "--trial {wildcards.trial} >> {log:q} 2>&1"
