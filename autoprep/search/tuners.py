"""How to search: Keras Tuner's own oracles and tuners, with what autoprep adds.

Random and Bayesian search are staged, as an expert explores (scale and imbalance first,
augmentation after): (1) the data-seeded configurations (`SearchSpace.seed_configurations`:
normalization from the images (per-channel standardization for color, [0, 1] for gray unless
raw-looking), the imbalance strategy from the class counts, no or light augmentation),
then the space's default configuration (rescaled pixels, no augmentation, inverse-frequency
weights), as SMAC and auto-sklearn start from their defaults; (2) augmentation strength on top
of the best of these (its normalization, imbalance strategy and model hyperparameters kept,
ops drawn from the space's prior, no policy); (3) the whole space, policies included, by
Keras Tuner's own random search or Bayesian optimization (whose Gaussian process sees every
finished trial; its acquisition is maximized in batches, see `_BatchedAcquisition`).
Hyperband keeps its own schedule; its first configurations are stage 1's, the later ones
draws from the space's prior. The tuners get two hooks:
`on_trial_end` writes results after every trial; `should_stop` ends the search before a new
trial starts (trial count or time budget). Keras Tuner's state files (oracle.json,
trial.json, tuner0.json) are written through a temporary file and a rename, so a crash in the
middle of a write cannot break a resume (the Keras Tuner internals this needs are in
`kt_adapter`). While a search runs, the objects that existed before it are left out of
garbage collections (`startup_objects_frozen`). Everything else, including Keras Tuner's
distributed mode and resuming from its project directory, is Keras Tuner's.
"""

import contextlib
import functools
import gc
import warnings

import keras_tuner as kt
import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.spatial
import sklearn.base
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process.kernels import Matern
from threadpoolctl import ThreadpoolController

from autoprep import objectives
from autoprep.search import devices, kt_adapter
from autoprep.search.hypermodel import TrialMetrics
from autoprep.search.kt_adapter import (
    AtomicOracleState,
    AtomicTunerState,
    GivenOracle,
    OneCollectionPerBuild,
    PriorRandomValues,
)
from autoprep.search.names import check_tuner


class StopSearch(Exception):
    """Raised before a trial starts when `should_stop` says the search is over."""


def default_values(hyperparameters) -> kt.HyperParameters:
    """Every active hyperparameter of a space at its default value."""
    values = kt.HyperParameters()
    for hp in hyperparameters.space:
        values.merge([hp])
        if values.is_active(hp):
            values.values[hp.name] = hp.default
    return values


def first_values(oracle) -> kt.HyperParameters:
    """The search's first configuration: stage 1's first (data-seeded) point, else the space's
    default. It is the configuration the winner must beat by more than the noise."""
    points = getattr(oracle, "first_points", ())
    values = default_values(oracle.hyperparameters)
    if points:
        values.values = _complete(oracle.hyperparameters, points[0])
    return values


def augmentation_stage_trials(max_trials: int) -> int:
    """How many trials stage 2 (augmentation on top of the best) gets: a quarter, 2 or more."""
    return max(2, max_trials // 4)


class _Staged:
    """An oracle mix-in running the staged search of this module's docstring.

    `first_points` (set by `make_tuner`) are stage 1's {hyperparameter name: value} dicts;
    `prior(hyperparameters, seed)` (the space's `random_values`) draws stage 2's ops;
    `stage_trials` is stage 2's length. A point equal to an earlier trial's is skipped (in
    stage 3, replaced by a draw from the prior).
    """

    first_points = ()
    stage_trials = 0

    def populate_space(self, trial_id):
        started = len(self.trials)
        first = [*self.first_points, default_values(self.hyperparameters).values]
        tried = [t.hyperparameters.values for t in self.trials.values()]
        for point in first[started:]:  # stage 1, in order (resumed runs continue it)
            values = _complete(self.hyperparameters, point)
            if values not in tried:
                return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": values}
        best = self._best_values()
        if best is not None and self.prior is not None and (
            started < len(first) + self.stage_trials
        ):
            for attempt in range(_REDRAWS):  # all ops off, say, may repeat a stage-1 point
                drawn = self.prior(self.hyperparameters, _stage_seed(self.seed, started, attempt))
                values = _complete(self.hyperparameters, _augmented(self.hyperparameters, best,
                                                                    drawn))
                if values not in tried:
                    return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": values}
        return self._untried(super().populate_space(trial_id), tried, started)

    def _untried(self, proposal, tried, started):
        """Keras Tuner's proposal, or a draw from the prior when it repeats a tried point.

        A seeded trial repeats its score exactly, so a repeated point would only spend a trial
        (Bayesian optimization proposes its best point again once the acquisition settles).
        """
        values = proposal.get("values")
        if values is None or self.prior is None or values not in tried:
            return proposal
        for attempt in range(_REDRAWS):
            drawn = _complete(self.hyperparameters, self.prior(
                self.hyperparameters, _stage_seed(self.seed, started, attempt + 1)))
            if drawn not in tried:
                return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": drawn}
        return proposal

    def _best_values(self):
        """The values of the best completed trial so far, or None."""
        done = [t for t in self.trials.values()
                if t.status == kt.engine.trial.TrialStatus.COMPLETED and t.score is not None]
        if not done:
            return None
        return objectives.best(done, self.objective.direction,
                               key=lambda t: t.score).hyperparameters.values


_REDRAWS = 20  # draws from the prior to find an untried point before a repeat is accepted
_KEPT = ("autoprep/normalization", "autoprep/imbalance")  # stage 2 keeps these (and children)
_POLICY = "autoprep/policy"


def _augmented(hyperparameters, best: dict, drawn: dict) -> dict:
    """Stage 2's point: `best`'s normalization, imbalance strategy (with its parameters) and
    model hyperparameters; `drawn`'s augmentation ops; no policy."""
    from autoprep.choices.augmentation import POLICY_SELECTOR

    values = {}
    for hp in hyperparameters.space:
        parents = [condition.name for condition in hp.conditions]
        keep = (not hp.name.startswith("autoprep/") or hp.name in _KEPT
                or any(parent in _KEPT for parent in parents))
        if hp.name == _POLICY:
            values[hp.name] = POLICY_SELECTOR.off
        elif keep and hp.name in best:
            values[hp.name] = best[hp.name]
        elif hp.name in drawn:
            values[hp.name] = drawn[hp.name]
    return values


def _complete(hyperparameters, point: dict) -> dict:
    """`point` made a full, consistent set of values: active hyperparameters only, each from
    `point` when given there (and allowed), else its default."""
    filled = kt.HyperParameters()  # is_active(hp) reads hp's conditions and the values
    for hp in hyperparameters.space:
        if filled.is_active(hp):
            value = point.get(hp.name, hp.default)
            values = getattr(hp, "values", None)
            if values is not None and value not in values:
                value = hp.default
            filled.values[hp.name] = value
    return filled.values


def _stage_seed(seed, trial_number, attempt=0) -> int:
    return ((seed or 0) * 7919 + trial_number + attempt * 100_003) % 2**31


# The batched acquisition: candidates drawn at once, then the best few polished.
UNIFORM_CANDIDATES = 4096  # uniform in the unit cube (Keras Tuner's continuous relaxation)
PRIOR_CANDIDATES = 256  # from the space's prior, picked from PRIOR_POOL draws
PRIOR_POOL = 1024  # drawn once per search (about 0.1 ms a draw), again if the space grows
POLISHED = 5  # L-BFGS-B starts, from the best candidates
POLISH_ITERATIONS = 30
_STEP = 1e-6  # forward difference of the acquisition's gradient
GRID_PER_DECADE = 4  # likelihoods of the kernel's length scale, before its one L-BFGS-B fit


class _BatchedAcquisition:
    """A mix-in before Keras Tuner's Bayesian oracle: its Gaussian process (refitted on every
    finished trial) and its upper-confidence-bound acquisition, maximized in batches.

    Keras Tuner minimizes `mean - beta * std` (of the score negated) by L-BFGS-B from 50
    random starts with numerical gradients, each a `predict` call per point: 800 calls when the
    acquisition is flat, 23,000 (34 s) when it is not (results/search_cost.md). Here one
    `predict` scores UNIFORM_CANDIDATES uniform points and PRIOR_CANDIDATES draws of the
    space's prior (`prior`, picked from PRIOR_POOL draws made once: drawing them anew for
    every proposal cost a fifth of it), and L-BFGS-B polishes the POLISHED best, each
    gradient one `predict` of d + 1 points. The draws come from the oracle's seed and the
    number of trials, so a resumed search proposes what an uninterrupted one would; BLAS
    runs one thread, as threads cost more than they gain on matrices this small (and compete
    with TensorFlow's). The process's kernel has one parameter, its length scale: `_fit`
    finds its best likelihood on a grid, then polishes it once, instead of 21 L-BFGS-B runs
    (see `_fit`).
    """

    def populate_space(self, trial_id):
        completed = [t for t in self.trials.values() if t.status == "COMPLETED"]
        start = self.num_initial_points or max(3 * len(self.hyperparameters.space), 3)
        if len(completed) < start:  # Keras Tuner's random start
            return super().populate_space(trial_id)
        rng = np.random.default_rng([self.seed, len(self.trials)])
        with _blas_threads().limit(limits=1, user_api="blas"):
            x, y = kt_adapter.gp_observations(self)
            with warnings.catch_warnings():  # length scales at their bounds: a flat fit, no fault
                warnings.filterwarnings("ignore", category=ConvergenceWarning,
                                        module=r"sklearn\.gaussian_process")
                self.gpr = _fit(self.gpr, x, y)
            best = self._maximize_acquisition(rng, x.shape[1])
        return {"status": kt.engine.trial.TrialStatus.RUNNING,
                "values": kt_adapter.gp_values(self, best)}

    def _maximize_acquisition(self, rng, dimensions):
        """The candidate with the best acquisition, after a short L-BFGS-B polish."""
        candidates = [rng.uniform(size=(UNIFORM_CANDIDATES, dimensions))]
        pool = self._prior_pool()
        if len(pool):
            picked = rng.choice(len(pool), size=min(PRIOR_CANDIDATES, len(pool)), replace=False)
            candidates.append(pool[np.sort(picked)])
        candidates = np.concatenate(candidates)
        scores = self._acquisition(candidates)
        order = np.argsort(scores, kind="stable")[:POLISHED]
        best, best_score = candidates[order[0]], scores[order[0]]
        for start in candidates[order]:
            polished = scipy.optimize.minimize(
                self._acquisition_and_gradient, start, jac=True, method="L-BFGS-B",
                bounds=[(0.0, 1.0)] * dimensions, options={"maxiter": POLISH_ITERATIONS})
            if polished.fun < best_score:
                best, best_score = polished.x, polished.fun
        return best

    def _prior_pool(self) -> np.ndarray:
        """PRIOR_POOL draws of the space's prior (`prior`), embedded as `gp_observations`'
        rows; the same draws for the same seed and space (none without a prior)."""
        prior = getattr(self, "prior", None)
        if prior is None:
            return np.empty((0, 0))
        space = tuple(hp.name for hp in self.hyperparameters.space)
        kept = self.__dict__.get("_prior_draws")
        if kept is None or kept[0] != space:
            seeds = np.random.default_rng([self.seed, 0, 0]).integers(2**31, size=PRIOR_POOL)
            kept = self._prior_draws = (space, kt_adapter.gp_embedding(
                self, [prior(self.hyperparameters, int(seed)) for seed in seeds]))
        return kept[1]

    def _acquisition(self, points):
        """Keras Tuner's acquisition, to minimize: `mean - beta * std` of each point."""
        mean, std = self.gpr.predict(points, return_std=True)
        return np.ravel(mean) - self.beta * np.ravel(std)

    def _acquisition_and_gradient(self, point):
        """The acquisition at `point` and its forward-difference gradient, in one `predict`."""
        points = np.vstack([point, point + _STEP * np.eye(len(point))])
        scores = self._acquisition(points)
        return float(scores[0]), (scores[1:] - scores[0]) / _STEP


@functools.cache
def _blas_threads() -> ThreadpoolController:
    """The process's BLAS libraries, found once: `threadpool_limits` looks them up on every
    call (3 ms, about 4 % of a proposal late in a search)."""
    return ThreadpoolController()


def _fit(gpr, x, y):
    """`gpr` (Keras Tuner's `GaussianProcessRegressor`) fitted to (x, y), its kernel's
    parameters at their best log marginal likelihood.

    scikit-learn maximizes the likelihood by L-BFGS-B from the kernel's start and from
    `n_restarts_optimizer` (Keras Tuner: 20) log-uniform draws within its bounds, every step
    a likelihood with its gradient: about 90 of them, 0.12-0.2 s with 200 trials, the part of
    a proposal that grows with the search. Keras Tuner's kernel, a Matern kernel (nu = 2.5)
    with a single length scale, has one parameter: the likelihood alone (`_likelihoods`) on a
    log grid of GRID_PER_DECADE points per decade of its bounds finds the best basin, and
    one L-BFGS-B run from the grid's best point its optimum, from the data alone (no random
    starts) in about a third of the time: on 60 synthetic searches, the same likelihood on 56
    and a higher one on 4, where the restarts missed the best basin (results/gp_fit.md).
    Other kernels get scikit-learn's own fit.
    """
    kernel = gpr.kernel
    if not (type(kernel) is Matern and kernel.nu == 2.5 and kernel.n_dims == 1
            and np.ndim(y) == 1):
        return gpr.fit(x, y)
    probe = sklearn.base.clone(gpr).set_params(optimizer=None).fit(x, y)
    (low, high), = kernel.bounds
    points = round((high - low) / np.log(10) * GRID_PER_DECADE) + 1
    grid = np.linspace(low, high, points)  # log length scales, as scikit-learn's theta
    start = kernel.clone_with_theta(grid[[int(np.argmax(_likelihoods(probe, grid)))]])
    restarts = gpr.n_restarts_optimizer
    fitted = sklearn.base.clone(gpr).set_params(kernel=start, n_restarts_optimizer=0).fit(x, y)
    return fitted.set_params(kernel=kernel, n_restarts_optimizer=restarts)  # as it came


def _likelihoods(fitted, log_length_scales) -> np.ndarray:
    """`fitted.log_marginal_likelihood(theta)` for every theta of `log_length_scales` (a
    Matern kernel, nu = 2.5, one length scale), -inf where the kernel is not positive definite.

    The same formula as scikit-learn's (`Matern.__call__`, then Algorithm 2.1 of Rasmussen
    and Williams), with the distances between the training points computed once instead of
    once per theta: about half the time of a loop over `log_marginal_likelihood`.
    """
    x, y = fitted.X_train_, fitted.y_train_
    n = len(x)
    distances = scipy.spatial.distance.pdist(x) * np.sqrt(5.0)
    diagonal = np.diag_indices(n)
    likelihoods = np.full(len(log_length_scales), -np.inf)
    for i, theta in enumerate(log_length_scales):
        r = distances / np.exp(theta)
        k = scipy.spatial.distance.squareform((1.0 + r + r**2 / 3.0) * np.exp(-r))
        k[diagonal] = 1.0 + fitted.alpha  # the kernel's own 1, and the jitter
        try:
            lower = scipy.linalg.cholesky(k, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            continue
        z = scipy.linalg.solve_triangular(lower, y, lower=True, check_finite=False)
        likelihoods[i] = (-0.5 * z @ z - np.log(np.diag(lower)).sum()
                          - n / 2 * np.log(2 * np.pi))
    likelihoods[np.isnan(likelihoods)] = -np.inf
    return likelihoods


class RandomSearchOracle(
    AtomicOracleState, _Staged, PriorRandomValues, kt.oracles.RandomSearchOracle
):
    pass


class BayesianOptimizationOracle(
    AtomicOracleState, _Staged, PriorRandomValues, _BatchedAcquisition,
    kt.oracles.BayesianOptimizationOracle,
):
    pass


class HyperbandOracle(AtomicOracleState, PriorRandomValues, kt.oracles.HyperbandOracle):
    """Keras Tuner's Hyperband (its brackets, rounds and epochs) from stage 1's points: its
    first new configurations are `first_points` (the data-seeded ones), then the space's
    default, and the later ones are draws from the space's prior (`prior`)."""

    first_points = ()

    def given_values(self):
        tried = [_configuration(t.hyperparameters.values) for t in self.trials.values()]
        for point in [*self.first_points, default_values(self.hyperparameters).values]:
            values = _configuration(_complete(self.hyperparameters, point))
            if values not in tried:
                return values
        return None


def _configuration(values: dict) -> dict:
    """`values` without Hyperband's schedule (`tuner/epochs`, `tuner/round`, ...)."""
    return {name: value for name, value in values.items() if not name.startswith("tuner/")}


class _Hooks(OneCollectionPerBuild, AtomicTunerState):
    def __init__(self, *args, on_trial_end=None, should_stop=None, **kwargs):
        self._on_trial_end = on_trial_end
        self._should_stop = should_stop
        self._evaluations = {}  # trial id -> the `Evaluation` its run returned, until it ends
        super().__init__(*args, **kwargs)
        if on_trial_end is not None:
            # The chief of a distributed search runs no trial: its oracle tells it of the
            # trials the workers end (their evaluations stay with the workers).
            self.oracle.chief_trial_ended = lambda trial: on_trial_end(self, trial, None)

    def on_search_begin(self):
        # Keras Tuner writes the tuner file when a trial ends and resumes a run only when the
        # file exists: a process killed in the first trial would otherwise start over and run
        # that trial again every time, instead of failing it when it is cut off twice.
        super().on_search_begin()
        self.save()

    def search(self, *args, **kwargs):
        with startup_objects_frozen():
            return super().search(*args, **kwargs)

    def pre_create_trial(self):
        if self._should_stop is not None and self._should_stop(self):
            raise StopSearch()

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        evaluation = self._evaluations.pop(trial.trial_id, None)
        if self._on_trial_end is not None:
            self._on_trial_end(self, trial, evaluation)

    def run_trial(self, trial, *args, **kwargs):
        seed_trial = getattr(self.hypermodel, "seed_trial", None)
        if seed_trial is not None:  # before Keras Tuner builds the trial's model
            seed_trial(trial.hyperparameters)
        with devices.out_of_memory_fails_trial(getattr(self.hypermodel, "batch_size", None)):
            results = super().run_trial(trial, *args, **kwargs)
        # `Tuner.run_trial` returns what `HyperModel.fit` returned, one per execution.
        evaluations = [r.evaluation for r in results if isinstance(r, TrialMetrics)]
        if evaluations:
            self._evaluations[trial.trial_id] = evaluations[-1]
        return results


@contextlib.contextmanager
def startup_objects_frozen():
    """While inside, the garbage collector skips the objects that existed when it was entered.

    Keras Tuner collects garbage twice before every trial's model (`keras.backend.clear_session`
    and `gc.collect`), and a full collection walks every object of the process: about 420,000
    once TensorFlow and Keras are loaded, 0.67 s a collection on a loaded 2-core machine. What
    exists before the search (modules, the decoded images, the search's own state) is collected
    once on entry and frozen (`gc.freeze`); a trial's garbage is still collected before the
    next trial. Nothing is frozen when something else already froze objects: its freeze is not
    ours to undo (`gc.unfreeze` thaws everything).
    """
    if gc.get_freeze_count():
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class Tuner(_Hooks, kt.Tuner):
    pass


class Hyperband(_Hooks, GivenOracle, kt.Hyperband):
    pass


def make_tuner(name, hypermodel, *, objective, max_trials, epochs, seed=None, first_points=(),
               **kwargs):
    """A Keras Tuner tuner by name ("bayesian", "random" or "hyperband").

    Hyperband schedules its own trials from `epochs` (its `max_epochs`); autoprep stops it
    after `max_trials` through `should_stop`. Bayesian optimization fits its Gaussian process
    after a third of the trials (at least 3) instead of Keras Tuner's 3 x dimensions, which
    would leave a short search purely random. `first_points` are the configurations of stage
    1 (see the module docstring), as {hyperparameter name: value} dicts.
    """
    check_tuner(name)
    if seed is not None:  # Keras Tuner's oracles take seed 0 for no seed (`seed or random...`)
        seed += 1
    # Random points follow the space's prior (most ops off, light strengths first).
    prior = getattr(getattr(hypermodel, "space", None), "random_values", None)
    if name == "hyperband":
        oracle = HyperbandOracle(objective=objective, max_epochs=max(epochs, 2), seed=seed)
        oracle.prior, oracle.first_points = prior, list(first_points)
        return Hyperband(oracle=oracle, hypermodel=hypermodel, **kwargs)
    if name == "bayesian":
        oracle = BayesianOptimizationOracle(
            objective=objective, max_trials=max_trials, seed=seed,
            num_initial_points=max(3, max_trials // 3),
        )
    else:
        oracle = RandomSearchOracle(objective=objective, max_trials=max_trials, seed=seed)
    oracle.prior, oracle.first_points = prior, list(first_points)
    oracle.stage_trials = augmentation_stage_trials(max_trials)
    return Tuner(oracle=oracle, hypermodel=hypermodel, **kwargs)
