"""`autoprep tune` and `autoprep demo`: `autoprep.tune` from the shell, resumable and interruptible.

The run directory `--out RUN_DIR` is `tune`'s `directory/project_name`. Rerunning a command
resumes its search; Ctrl-C and SIGTERM stop it after the state is saved (exit 130 / 143).
"""

import argparse
import contextlib
import logging
import os
import re
import shlex
import signal
import textwrap
import warnings

from autoprep.cli.progress import Progress
from autoprep.cli.space import add_space_options, search_space
from autoprep.objectives import OBJECTIVES
from autoprep.report import Refresher
from autoprep.run.files import LOG_FILE, PIPELINE_FILE, RESULTS_FILE, TRIALS_FILE
from autoprep.search.names import TUNERS

DEMO_OUT = os.path.join("autoprep_runs", "demo")
# The report is rewritten after a trial when this long has passed since the last one (each
# rewrite takes a few seconds; see the `report:` lines of the run's log): --report-every.
REPORT_REFRESH_SECONDS = 300
LOOPBACK = "127.0.0.1"  # the chief's default address: reachable from this machine only
MAX_PIXELS_HELP = ("skip image files whose header declares more than N pixels (height x "
                   "width), e.g. 100M (default: 40M)")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the search saves its state before the exit."""


def add_parser(subparsers):
    """Adds the `tune` and `demo` sub-commands."""
    tune = subparsers.add_parser(
        "tune", allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
        help="search the preprocessing of your model on an image folder (resumable)",
        description="Search normalization, augmentation and class-imbalance handling for your\n"
        "Keras model on DATA_DIR. Results are saved in RUN_DIR after every trial; rerun the\n"
        "same command to resume after a crash, Ctrl-C or reboot (--overwrite starts over).",
        epilog="example:\n  nohup autoprep tune data/ --model model.py:build_model "
        "--out runs/night --time-budget 8h > night.out 2>&1 &\n  tail -f runs/night/" + LOG_FILE,
    )
    tune.add_argument("data_dir", metavar="DATA_DIR",
                      help="image folder with one sub-folder of images per class")
    tune.add_argument("--model", required=True, metavar="MODEL",
                      help="your model function, `path/to/file.py:function` or "
                      "`package.module:function`, called as function(input_shape, num_classes"
                      "[, hp]) and returning a Keras model (compiled or not)")
    tune.add_argument("--out", required=True, metavar="RUN_DIR",
                      help=f"run directory for {RESULTS_FILE}, {TRIALS_FILE}, {PIPELINE_FILE}, "
                      f"{LOG_FILE} and the tuner's state; an existing one is resumed")
    _add_search_options(tune, max_trials=20, epochs=10)
    tune.add_argument("--tuner", choices=sorted(TUNERS), default="bayesian",
                      help="search algorithm (default: %(default)s)")
    tune.add_argument("--objective", choices=list(OBJECTIVES), default="balanced_accuracy",
                      help="validation score to optimize (default: %(default)s)")
    tune.add_argument("--cv", type=_count(2), metavar="K",
                      help="score each trial by stratified K-fold cross-validation instead of "
                      "one validation split")
    tune.add_argument("--image-size", type=image_size, metavar="HxW",
                      help="resize images to HxW, e.g. 64x64 (default: their common size, or "
                      "the median size, at most 256 on the long side)")
    tune.add_argument("--batch-size", type=_count(1), default=32, metavar="B",
                      help="training batch size (default: %(default)s)")
    tune.add_argument("--max-pixels", type=max_pixels, metavar="N", help=MAX_PIXELS_HELP)
    tune.add_argument("--validation-split", type=fraction(), metavar="F",
                      help="score each trial on one stratified validation split of this "
                      "fraction of all images, e.g. 0.2, even when a class would have few "
                      "images in it (default: 0.2, or 3-fold cross-validation when a class "
                      "would get fewer than 20 validation images)")
    tune.add_argument("--test-split", type=fraction(zero=True), default=0.2, metavar="F",
                      help="fraction of all images held out for the final test score; 0 for "
                      "none (default: %(default)s)")
    tune.add_argument("--no-baseline", dest="baseline", action="store_false",
                      help="do not train the raw-pixel baseline for comparison with the test "
                      "score (saves --final-repeats trainings)")
    _add_distributed_options(tune)
    add_space_options(tune)
    tune.set_defaults(func=run_tune, check=check_tune)

    demo = subparsers.add_parser(
        "demo", allow_abbrev=False,
        help="a real search on the embedded handwritten digits (a few minutes)",
        description="Write scikit-learn's handwritten digits as a long-tailed image folder "
        "next to RUN_DIR and run a real search with a small convolutional network.",
    )
    demo.add_argument("--out", default=DEMO_OUT, metavar="RUN_DIR",
                      help="run directory (default: %(default)s); the images go to "
                      "RUN_DIR_data beside it")
    _add_search_options(demo, max_trials=16, epochs=8, seed=0)
    demo.set_defaults(func=run_demo)


def _add_distributed_options(parser):
    group = parser.add_argument_group("distributed search", textwrap.fill(
        "Keras Tuner's chief and workers: start the same command on every machine (the same "
        "DATA_DIR path on each), one with --chief, the others with --worker N too. The "
        "chief's port has no authentication: see docs/distributed.md.", width=78))
    group.add_argument("--chief", type=oracle_address, metavar="HOST:PORT",
                       help="alone: this process is the chief, keeps the results in RUN_DIR and "
                       "hands out trials on HOST:PORT; with --worker: the chief's address. "
                       f"PORT alone means {LOOPBACK}:PORT")
    group.add_argument("--worker", type=_count(0), metavar="N",
                       help="this process is worker N (0, 1, ...): it runs the chief's trials "
                       "and keeps no results")
    group.add_argument("--worker-timeout", type=duration, metavar="TIME",
                       help="(chief) a worker silent for TIME is counted as lost and its trial "
                       "runs again on another worker, once (default: 60s); a worker ignores "
                       "it, so that it can run the chief's command plus --worker N")


def check_tune(args):
    """The message of `tune` options that cannot go together, or None."""
    if args.worker is not None and args.chief is None:
        return (f"--worker {args.worker} needs the chief's address: add --chief HOST:PORT, "
                f"e.g. --chief {LOOPBACK}:8000")
    if args.worker_timeout is not None and args.chief is None:
        return ("--worker-timeout is an option of a distributed search's chief: add --chief "
                f"HOST:PORT, e.g. --chief {LOOPBACK}:8000")
    if args.validation_split is not None and args.cv is not None:
        return ("--validation-split and --cv cannot go together: --cv K validates on K folds "
                "instead of one split")
    if args.validation_split is not None and args.validation_split + args.test_split >= 1:
        return (f"--validation-split {args.validation_split} and --test-split "
                f"{args.test_split} leave no training images: their sum must be below 1")
    return None


def distributed_environment(args) -> dict:
    """Keras Tuner's KERASTUNER_* variables for --chief / --worker N ({} without them), and
    autoprep's AUTOPREP_WORKER_TIMEOUT for --worker-timeout."""
    if args.chief is None:
        return {}
    host, port = args.chief
    environment = {"KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": str(port),
                   "KERASTUNER_TUNER_ID": "chief" if args.worker is None else f"tuner{args.worker}"}
    if args.worker_timeout is not None and args.worker is None:
        environment["AUTOPREP_WORKER_TIMEOUT"] = str(args.worker_timeout)
    return environment


def oracle_address(text) -> tuple:
    """(host, port) from `HOST:PORT`, `[IPv6]:PORT` or `PORT` (host 127.0.0.1)."""
    match = re.fullmatch(r"(?:(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]*):)?(\d+)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT or PORT, e.g. {LOOPBACK}:8000 or 8000. Received: {text!r}")
    port = int(match.group(2))
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"the port must be between 1 and 65535. Received: {text!r}")
    return match.group(1) or LOOPBACK, port


def _check_port_free(host, port):
    """Refuses, before any image is read, a chief address this machine cannot listen on."""
    import socket

    from autoprep.errors import ArgumentError

    try:
        socket.create_server((host.strip("[]"), port),
                             family=socket.AF_INET6 if host.startswith("[") else socket.AF_INET
                             ).close()
    except OSError as error:
        raise ArgumentError(
            f"--chief {host}:{port}: cannot listen there ({error.strerror or error}). Choose "
            "another port, or an address of this machine."
        ) from None


def _add_search_options(parser, *, max_trials, epochs, seed=None):
    parser.add_argument("--max-trials", type=_count(1), default=max_trials, metavar="N",
                        help="number of trials, counting those already done in a resumed run "
                        "(default: %(default)s)")
    parser.add_argument("--epochs", type=_count(1), default=epochs, metavar="E",
                        help="training epochs per trial (default: %(default)s)")
    parser.add_argument("--time-budget", type=duration, metavar="TIME",
                        help="stop before a trial that would not fit in TIME: 90s, 45m, 8h, "
                        "1h30m or plain seconds (default: no limit)")
    parser.add_argument("--final-repeats", type=_count(1), default=3, metavar="R",
                        help="train the best pipeline and the baseline R times (seeds) for the "
                        "test score, their mean (default: %(default)s)")
    parser.add_argument("--reevaluate", type=_count(0), default=3, metavar="K",
                        help="before declaring the winner, train the K best configurations and "
                        "the search's first (data-seeded) one again on reshuffled folds; the "
                        "first one wins unless another beats it by more than one standard "
                        "error of the difference, else the simplest within it; 0: the best "
                        "trial wins (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=seed, metavar="S",
                        help="fixes splits, trial sampling and weight initialization (default: "
                        + ("the resumed run's, else one drawn and shown; required with --chief "
                           "and --worker)" if seed is None else "%(default)s)"))
    parser.add_argument("--memory-limit", type=memory_size, metavar="SIZE",
                        help="keep decoded images larger than SIZE (e.g. 512M, 2G) in a "
                        "memory-mapped file in RUN_DIR/cache, reused on resume, instead of RAM "
                        "(default: a quarter of the RAM)")
    parser.add_argument("--strategy", choices=["none", "mirrored"], default="none",
                        help="mirrored: train each trial on all local GPUs at once "
                        "(tf.distribute.MirroredStrategy; all CPU devices when there is no "
                        "GPU); none: TensorFlow's default device (default: %(default)s)")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="build models with Keras' mixed_float16 policy (float16 compute on "
                        "GPUs; give your model's last layer dtype='float32')")
    parser.add_argument("--device-input", action="store_true",
                        help="on a GPU: keep the decoded images on it and make each training "
                        "batch in the training step, not in tf.data on the CPU cores")
    parser.add_argument("--report-every", type=duration, default=REPORT_REFRESH_SECONDS,
                        metavar="TIME", help="rewrite RUN_DIR/report.html after a trial when "
                        "TIME has passed since the last time (each takes a few seconds; "
                        "default: 5m)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete RUN_DIR's results and start over instead of resuming")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also show Keras Tuner's trial summaries and Keras' per-epoch bars")


def duration(text) -> float:
    """Seconds from `90s`, `45m`, `8h`, `1h30m`, `1.5h` or a plain number of seconds."""
    match = re.fullmatch(r"(?:(\d+(?:\.\d*)?)h)?(?:(\d+(?:\.\d*)?)m)?(?:(\d+(?:\.\d*)?)s?)?",
                         text.strip().lower())
    if not text.strip() or match is None:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 90s, 45m, 8h, 1h30m or seconds. Received: {text!r}")
    hours, minutes, seconds = (float(group or 0) for group in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise argparse.ArgumentTypeError(f"the duration must be positive. Received: {text!r}")
    return total


def memory_size(text) -> int:
    """Bytes from `512M`, `2G` or a plain number of bytes."""
    from autoprep.data.memory import parse_size
    from autoprep.errors import ArgumentError

    try:
        return parse_size(text)
    except ArgumentError:
        raise argparse.ArgumentTypeError(
            f"expected a size such as 512M, 2G or bytes. Received: {text!r}") from None


def image_size(text) -> tuple:
    """(height, width) from `HxW` or a single size `N`."""
    match = re.fullmatch(r"(\d+)(?:[x×,](\d+))?", text.strip().lower())
    if match is None or int(match.group(1)) < 1 or int(match.group(2) or 1) < 1:
        raise argparse.ArgumentTypeError(f"expected HxW, e.g. 64x64. Received: {text!r}")
    height = int(match.group(1))
    return height, int(match.group(2) or height)


def max_pixels(text) -> int:
    """A pixel count from `40000000`, `40M` or `40e6`."""
    try:
        value = float(text[:-1]) * 1e6 if text.strip().lower().endswith("m") else float(text)
    except ValueError:
        value = 0
    if not value >= 1 or value != value:
        raise argparse.ArgumentTypeError(
            f"expected a number of pixels >= 1, e.g. 40M or 40000000. Received: {text!r}")
    return int(value)


def fraction(*, zero=False):
    """An argparse type: a number in (0, 1), or [0, 1) with `zero`."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not (0 <= value < 1 if zero else 0 < value < 1):
            raise argparse.ArgumentTypeError(
                f"expected a fraction {'>= 0' if zero else '> 0'} and < 1, e.g. 0.2. "
                f"Received: {text!r}")
        return value

    parse.__name__ = "fraction"
    return parse


def pixel_limit(args) -> dict:
    """`max_pixels=N` for the library when --max-pixels is given (else its default)."""
    return {} if args.max_pixels is None else {"max_pixels": args.max_pixels}


def _count(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}. Received: {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def run_tune(args) -> int:
    from autoprep.search.model_spec import load_model_fn

    space = search_space(args)  # a bad name fails here, before any image is read
    environment = distributed_environment(args)
    if environment.get("KERASTUNER_TUNER_ID") == "chief":
        _check_port_free(*args.chief)
    os.environ.update(environment)  # Keras Tuner reads them when the search starts
    model_fn = load_model_fn(args.model)
    return search(args, model_fn, args.data_dir, tuner=args.tuner, objective=args.objective,
                  cv=args.cv, image_size=args.image_size, batch_size=args.batch_size,
                  space=space, validation_split=args.validation_split,
                  test_split=args.test_split, baseline=args.baseline, **pixel_limit(args))


def run_demo(args) -> int:
    from autoprep.data.demo import demo_model
    from autoprep.run.rundir import check_run_dir

    data_dir = os.path.normpath(args.out) + "_data"
    check_run_dir(args.out, data_dir, overwrite=args.overwrite)  # before writing the images
    if not os.path.isdir(data_dir):
        print(f"writing the digits demo images to {data_dir}", flush=True)
        _write_demo_data(data_dir)
    return search(args, demo_model, data_dir)


def _write_demo_data(data_dir):
    """Writes the digits folder through a temporary name, so a crash leaves no half folder."""
    from autoprep.data.demo import write_demo_folder

    write_demo_folder(data_dir)


def search(args, model_fn, data_dir, **options) -> int:
    """Runs `autoprep.tune` with progress lines, a log file and signal handling."""
    import autoprep
    from autoprep.search.devices import mixed_precision

    directory, project = split_run_dir(args.out)
    run_dir = os.path.join(directory, project)
    progress = Progress(run_dir, max_trials=args.max_trials, time_budget=args.time_budget,
                        after=after_search(args.reevaluate, options))
    resume = resume_command(args)
    progress.say(f"autoprep {args.command} in {os.getcwd()}: {resume}", console=False)
    note = exposed_oracle_note(os.environ)
    if note:
        progress.say(note, error=True)
    role = _distributed_role(args)
    if role:
        progress.say(role)
    if args.strategy == "mirrored":
        from autoprep.search.devices import mirrored_strategy

        options["distribution_strategy"] = strategy = mirrored_strategy()
        progress.say(f"strategy: each trial mirrored over {strategy.num_replicas_in_sync} "
                     f"devices ({', '.join(strategy.extended.worker_devices)})")
    refresher = Refresher(interval=args.report_every)

    def trial_ended(result, record):
        progress.trial_ended(result, record)
        line = refresher.trial_ended(result)
        if line is not None:
            progress.say(line, console=False)
            progress.flush()

    try:
        with sigterm_raises(), _quiet(not (args.verbose or args.debug)), \
                mixed_precision(args.mixed_precision), _convention_warnings(progress):
            result = autoprep.tune(
                progress.timed(model_fn), data_dir, max_trials=args.max_trials,
                epochs=args.epochs,
                time_budget=args.time_budget, final_repeats=args.final_repeats,
                reevaluate=args.reevaluate,
                seed=args.seed, overwrite=args.overwrite,
                directory=directory, project_name=project, verbose=2 if args.verbose else 0,
                on_trial_end=trial_ended, memory_limit=args.memory_limit,
                device_input=args.device_input,
                on_plan=progress.planned, **options,
            )
    except KeyboardInterrupt as interrupt:
        signal_name = "SIGTERM" if isinstance(interrupt, Terminated) else "Ctrl-C (SIGINT)"
        progress.say(f"\nstopped by {signal_name}; the search state is saved in {run_dir}.\n"
                     f"resume with:\n  {resume}", error=True)
        progress.flush()
        return 143 if isinstance(interrupt, Terminated) else 130
    except RuntimeError as error:
        from autoprep.search.kt_adapter import consecutive_failures

        failures = consecutive_failures(error)
        if failures is None:
            raise
        code = _too_many_failures(args, error, failures, progress, run_dir, resume)
        _final_report(progress, refresher, run_dir)
        return code
    if result.state.startswith("worker"):
        progress.say(f"worker done ({result.state[len('worker '):]}): the results are in the "
                     "chief's run directory")
        progress.flush()
        return 0
    progress.finished(result)
    _final_report(progress, refresher, run_dir, result)
    return 0


def after_search(reevaluate, options) -> str:
    """What `autoprep.tune` does after the last trial with these options, in words."""
    steps = ["re-evaluating the best configurations"] if reevaluate else []
    if options.get("test_split", 0.2) > 0:
        chosen = "the chosen pipeline" + (" and the baseline" if options.get("baseline", True)
                                          else "")
        steps.append(f"training {chosen} on the development split for the test score")
    return ", then ".join(steps)


def _distributed_role(args) -> str:
    """The line that says this process's part in a distributed search, or ""."""
    if getattr(args, "chief", None) is None:
        return ""
    address = "{}:{}".format(*args.chief)
    if args.worker is not None:
        role = f"worker {args.worker} (tuner{args.worker}) of the chief at {address}"
        if args.worker_timeout is not None:
            role += "\nnote: --worker-timeout is the chief's option: this worker ignores it"
        return role
    return (f"chief of a distributed search, handing out trials on {address}: start each worker "
            f"(N = 0, 1, ...) with the same command plus --worker N:\n  {worker_command(args)}")


def worker_command(args) -> str:
    """The chief's command (without --overwrite) plus `--worker N`: a worker's command."""
    return resume_command(args) + " --worker N"


def _final_report(progress, refresher, run_dir, result=None):
    """Writes RUN_DIR/report.html at the end of a search and says where it is."""
    from autoprep.run.result import load_result

    try:
        result = result if result is not None else load_result(run_dir)
    except Exception as error:  # no results to report
        progress.say(f"report not written: {error}", console=False)
    else:
        progress.say(refresher.write(result))
    progress.flush()


def _too_many_failures(args, error, failures, progress, run_dir, resume) -> int:
    from autoprep.cli import report_error
    from autoprep.run.trial import failure_reason

    limit, message = failures
    reason = failure_reason(message) or "unknown"
    problem = RuntimeError(
        f"the last {limit} trials failed in a row, so the search stopped. Last failure: "
        f"{reason}. The results so far are in {run_dir}; fix the cause, then resume with: "
        f"{resume}"
    )
    problem.__cause__ = error  # --debug shows Keras Tuner's traceback
    progress.say(f"stopped: {problem}", console=False)
    progress.flush()
    return report_error(args, problem, code=1)


def exposed_oracle_note(environ) -> str:
    """A warning when this process is a distributed search's chief whose oracle (no
    authentication) listens on an address other than loopback; else ""."""
    import ipaddress

    address = environ.get("KERASTUNER_ORACLE_IP", "")
    if environ.get("KERASTUNER_TUNER_ID") != "chief" or not address:
        return ""
    try:
        loopback = address == "localhost" or ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:  # a host name
        loopback = False
    if loopback:
        return ""
    return (f"note: Keras Tuner's oracle listens on {address}:"
            f"{environ.get('KERASTUNER_ORACLE_PORT', '?')} without authentication: keep that "
            "address on a private network, or use 127.0.0.1 with SSH tunnels (see "
            "docs/distributed.md)")


def split_run_dir(out) -> tuple:
    """`--out RUN_DIR` as `tune`'s (directory, project_name)."""
    path = os.path.normpath(os.fspath(out))
    directory, project = os.path.split(path)
    return directory or ".", project


def resume_command(args) -> str:
    """The command that resumes this run: the same arguments, without --overwrite."""
    words = [word for word in args.argv if word != "--overwrite"]
    return shlex.join(["autoprep", *words])


@contextlib.contextmanager
def _quiet(quiet):
    """Hides TF notes, GP convergence warnings and Keras Tuner's tracebacks of failed trials."""
    from sklearn.exceptions import ConvergenceWarning

    from autoprep.search.kt_adapter import trial_tracebacks

    logger = logging.getLogger("tensorflow")
    previous = logger.level
    if quiet:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), (
            trial_tracebacks(False) if quiet else contextlib.nullcontext()
        ):
            if quiet:
                warnings.simplefilter("ignore", ConvergenceWarning)
            yield
    finally:
        logger.setLevel(previous)


@contextlib.contextmanager
def _convention_warnings(progress):
    """Says an `InputConventionWarning` (a normalization that contradicts the model) as a
    progress line, also in the log, instead of Python's warning text."""
    from autoprep.errors import InputConventionWarning

    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, *args, **kwargs):
            if issubclass(category, InputConventionWarning):
                progress.say(f"warning: {message}", error=True)
            else:
                shown(message, category, *args, **kwargs)

        warnings.simplefilter("always", InputConventionWarning)
        warnings.showwarning = show
        yield


@contextlib.contextmanager
def sigterm_raises():
    """While inside, SIGTERM raises `Terminated` (once; a second SIGTERM cannot cut the save)."""
    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
