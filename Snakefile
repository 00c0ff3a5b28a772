# pimsk workflow: the table of contents. One rule per step, each a thin `shell:` call of one `pimsk` verb.
#
#   snakemake --cores 2 --keep-going                     # default: the demo subjects (config/config.yaml)
#   snakemake --cores 4 --config subjects=[motonms_unipd] steps=[c3d,scale,ik,id,so]
#   snakemake --profile workflow/profiles/slurm          # on a SLURM cluster (README: "Running on a cluster")
#   snakemake --report results/report.html               # the HTML report: figures with captions, jobs, timings
#
# Results: <results_dir>/<subject>/<trial>/<step>/ (scaling: <results_dir>/<subject>/scale/), logs in
# <results_dir>/logs/, timings in <results_dir>/benchmarks/; learning stage under <results_dir>/learn/<subject>/,
# figures under <results_dir>/figures/<subject>/; step beyond (parameter identification, label-free training,
# transfer to an unseen subject) under <results_dir>/beyond/, its figures under <results_dir>/figures/beyond/.
# Config and subject files are validated when this file is parsed: a mistake stops the run at once with one line
# naming the file and the field.

configfile: f"{workflow.basedir}/config/config.yaml"


report: "workflow/report/workflow.rst"  # `snakemake --report`: this text, then every figure with its caption


include: "workflow/rules/common.smk"  # config + subject files validated, subject x trial helpers
include: "workflow/rules/beyond_arguments.smk"  # step beyond: its helper subjects (validated now), its settings
include: "workflow/rules/arguments.smk"  # subject-file settings -> explicit `pimsk` arguments (checked now)
include: "workflow/rules/synth.smk"
include: "workflow/rules/c3d.smk"
include: "workflow/rules/scale.smk"
include: "workflow/rules/ik.smk"
include: "workflow/rules/id.smk"
include: "workflow/rules/so.smk"
include: "workflow/rules/cmc.smk"
include: "workflow/rules/learn_arguments.smk"  # learning sections -> dataset spec, run configs (checked now)
include: "workflow/rules/learn.smk"  # emg, geometry, dataset, train, evaluate, figures
include: "workflow/rules/beyond.smk"  # identification, label-free vs supervised, transfer; figures + tables


rule all:
    default_target: True
    input:
        all_targets,


onsuccess:
    report_html = write_report()  # the HTML report of this run (common.smk); None if it could not be made
    results = os.path.abspath(R)
    print(f"\npimsk: done ({', '.join(config['subjects'])}; steps {', '.join(config['steps'])})")
    print(f"pimsk: results  {results}/<subject>/<trial>/<step>/   (scaling: {results}/<subject>/scale/)")
    print(f"pimsk: logs     {results}/logs/   timings: {results}/benchmarks/")
    figures = Path(R) / "figures"
    print(f"pimsk: figures  {figures.resolve()}/" if figures.is_dir()
          else "pimsk: figures  none yet (the learning stage writes them to <results_dir>/figures/)")
    print(f"pimsk: report   {report_html}" if report_html
          else f"pimsk: report   not made; run: snakemake --report {R}/report.html")
