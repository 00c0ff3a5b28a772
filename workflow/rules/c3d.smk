# C3D -> OpenSim inputs for one trial: markers.trc (m, OpenSim axes), events.json, conversion.json (what was read,
# filled and dropped); beside them grf.mot + external_loads.xml where the trial has force plates and emg_raw.sto
# where it has EMG (listed in conversion.json, which is written last). Every setting comes from the subject file
# and is passed explicitly (arguments.smk), so a change to one trial's plates or marker names reruns that trial.

rule c3d:
    input:
        c3d=lambda wc: c3d_path(wc.subject, wc.trial),
    output:
        trc=f"{R}/{{subject}}/{{trial}}/c3d/markers.trc",
        events=f"{R}/{{subject}}/{{trial}}/c3d/events.json",
        report=f"{R}/{{subject}}/{{trial}}/c3d/conversion.json",
    params:
        out_dir=lambda wc, output: os.path.dirname(output.trc),
        options=lambda wc: c3d_args(wc.subject, wc.trial),
    log:
        log_path("c3d"),
    benchmark:
        bench_path("c3d")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "pimsk c3d {input.c3d:q} --out-dir {params.out_dir:q} --subject {wildcards.subject} "
        "--trial {wildcards.trial} {params.options} > {log:q} 2>&1"
