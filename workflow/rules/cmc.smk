# Computed muscle control per dynamic trial over its analysis window (time_range_s): IK coordinates + the labels
# model (model_scaled_degroote.osim unless muscle_model: original; the trial's set-up applied: --lock,
# --keep-muscles) (+ external loads) -> muscle forces (N), excitations, states. Tasks and reserve/residual
# actuators are generated from the model unless the subject file gives them. Subject-file settings (cmc.*):
# tasks, actuators, no_actuators, cmc_window_s, lowpass_hz, integrator_tolerance, slow_target.

rule cmc:
    input:
        model_scaled=rules.scale.output.model,  # the scale job writes the labels model beside it
        coordinates=rules.ik.output.coordinates,
        c3d=rules.c3d.output.report,
    output:
        forces=f"{R}/{{subject}}/{{trial}}/cmc/cmc_Actuation_force.sto",
        controls=f"{R}/{{subject}}/{{trial}}/cmc/cmc_controls.sto",
        states=f"{R}/{{subject}}/{{trial}}/cmc/cmc_states.sto",
        kinematics=f"{R}/{{subject}}/{{trial}}/cmc/cmc_Kinematics_q.sto",
        setup=f"{R}/{{subject}}/{{trial}}/cmc/setup_cmc.xml",
    params:
        out_dir=lambda wc, output: os.path.dirname(output.forces),
        model=lambda wc: labels_model(wc.subject),
        external_loads=external_loads_arg,
        options=lambda wc: cmc_args(wc.subject, wc.trial),
    log:
        log_path("cmc"),
    benchmark:
        bench_path("cmc")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    shell:
        "pimsk cmc --model {params.model} --kinematics {input.coordinates:q} {params.external_loads} "
        "{params.options} --out {params.out_dir:q} --log {log:q} --subject {wildcards.subject} "
        "--trial {wildcards.trial} >> {log:q} 2>&1"
