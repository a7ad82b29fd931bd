"""Sequences from a random Markov chain, a prediction family (the "sunny / rainy days" example).

A task is an S x S transition matrix whose rows are drawn from Dirichlet(alpha) (alpha = 1:
uniform over the simplex). The episode starts in a uniformly drawn state s_0. Every trial
shows the current state one-hot (the observation); the action is the predicted distribution
of the next state, (B, S) (num_actions = S); the step reveals the next state one-hot (the
feedback). The sampled reward is log q(s_next), the expected reward sum_j P(j | s) log q(j),
so ``-expected_reward`` is the cross-entropy loss curve and the oracle (q = the true row)
gets minus the row's entropy. Any non-negative vector is a valid prediction: it is floored at
1e-6 and normalised, so a zero never gives an infinite loss.

Drift (``hazard`` h > 0): after every trial, with probability h, the whole matrix is redrawn
from the prior (a change point). Sunny spells that used to last start ending; the in-context
predictor must notice and forget. Without drift the Bayesian bigram predictor (Dirichlet-
multinomial counts) is Bayes-optimal; with drift the exact Bayes predictor mixes bigram
predictors over the run length since the last change point
(``mesalab.tasks.references.markov_refs``).

Priors (the constants alpha and h live in the latent so references know the structure):
``train`` the constructor's alpha and hazard; ``sparse`` alpha 0.1 (near-deterministic
chains: one example says a lot); ``flat`` alpha 10 (rows near uniform: little to learn);
``drifting`` hazard 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange, repeat
from torch import Tensor

from mesalab.tasks.base import OraclePolicy, Policy, State, StepOut, TaskFamily, check
from mesalab.tasks.references.markov_refs import (
    BigramPolicy,
    ChangePointBigramPolicy,
    UniformPolicy,
    UnigramPolicy,
)
from mesalab.tasks.sampling import sample_dirichlet

#: predictions are floored here before normalising
PROB_FLOOR = 1e-6


@dataclass
class ChainLatent:
    """Initial transition matrix and state, plus the prior's constants."""

    trans: Tensor  # (B, S, S) rows sum to 1
    s0: Tensor  # (B,) long
    alpha: Tensor  # (B,) Dirichlet concentration of every row
    hazard: Tensor  # (B,) probability of a change point after a trial


@dataclass
class ChainState(State):
    """Trial index, current state and the current (possibly drifted) transition matrix."""

    s: Tensor  # (B,) long
    trans: Tensor  # (B, S, S)


def normalise_prediction(action: Tensor, num_states: int) -> Tensor:
    """A prediction as a probability vector: floored at PROB_FLOOR and normalised, (B, S)."""
    # reshape, not rearrange: takes (B, S) or a flat (B*S,) and checks the width S
    q = action.float().reshape(-1, num_states).clamp_min(PROB_FLOOR)
    return q / q.sum(dim=1, keepdim=True)


class MarkovChain(TaskFamily):
    """Predict the next state of a Markov chain whose matrix is drawn per episode."""

    name = "markov_chain"
    analysis = "mesalab.analysis.sequence.SequenceAnalysis"
    kind = "prediction"
    action_space = "simplex"
    priors = ("train", "sparse", "flat", "drifting")
    obs_bounds = feedback_bounds = (0.0, 1.0)  # one-hot states
    action_bounds = (0.0, 1.0)  # a prediction's weights (normalised by the step)
    action_free_dynamics = True  # the chain moves whatever the prediction
    ideal_reference = "bayes_optimal"

    def __init__(
        self, num_states: int = 3, num_trials: int = 100, alpha: float = 1.0, hazard: float = 0.0
    ) -> None:
        check(
            isinstance(num_states, int) and num_states >= 2, "num_states", num_states, "an int >= 2"
        )
        check(
            isinstance(num_trials, int) and num_trials >= 1, "num_trials", num_trials, "an int >= 1"
        )
        check(alpha > 0, "alpha", alpha, "a float > 0")
        check(0.0 <= hazard <= 1.0, "hazard", hazard, "in [0, 1]")
        self.num_states = num_states
        self.num_trials = num_trials
        self.num_actions = num_states
        self.obs_dim = num_states
        self.feedback_dim = num_states
        self.alpha, self.hazard = float(alpha), float(hazard)

    def prior_constants(self, prior: str) -> tuple[float, float]:
        """(alpha, hazard) of the named prior."""
        self.check_prior(prior)
        alpha = {"sparse": 0.1, "flat": 10.0}.get(prior, self.alpha)
        return alpha, 0.05 if prior == "drifting" else self.hazard

    def _draw_matrices(self, alpha: Tensor, generator: torch.Generator) -> Tensor:
        """One Dirichlet(alpha) matrix per row of ``alpha`` (B,), (B, S, S)."""
        s = self.num_states
        conc = repeat(alpha, "b -> b s t", s=s, t=s).contiguous()  # (B, S, S)
        return sample_dirichlet(conc, generator)

    def sample_latent(
        self, n: int, generator: torch.Generator, prior: str = "train"
    ) -> ChainLatent:
        """Rows ~ Dirichlet(alpha), s_0 uniform."""
        alpha, hazard = self.prior_constants(prior)
        dev = self.device_of(generator)
        alpha_t = torch.full((n,), alpha, device=dev)
        trans = self._draw_matrices(alpha_t, generator)
        s0 = torch.randint(0, self.num_states, (n,), generator=generator, device=dev)
        return ChainLatent(
            trans=trans, s0=s0, alpha=alpha_t, hazard=torch.full((n,), hazard, device=dev)
        )

    def reset(
        self, latent: ChainLatent, generator: torch.Generator, t: Tensor | None = None
    ) -> ChainState:
        """Start in s_0 with the task's matrix."""
        if t is None:
            t = torch.zeros_like(latent.s0)
        return ChainState(t=t, s=latent.s0.clone(), trans=latent.trans.clone())

    def observe(self, latent: ChainLatent, state: ChainState) -> Tensor:
        """The current state, one-hot (B, S)."""
        return torch.nn.functional.one_hot(state.s, self.num_states).float()

    def current_row(self, state: ChainState) -> Tensor:
        """P(next | current state), (B, S)."""
        # reshape, not einops: runs every trial, where einops' per-call work showed in an A/B
        idx = state.s[:, None, None].expand(-1, 1, self.num_states)  # (B, 1, S)
        return state.trans.gather(1, idx)[:, 0]

    def step(
        self, latent: ChainLatent, state: ChainState, action: Tensor, generator: torch.Generator
    ) -> tuple[ChainState, StepOut]:
        """Sample the next state, score the prediction, maybe redraw the matrix."""
        q = normalise_prediction(action, self.num_states)  # (B, S)
        row = self.current_row(state)  # (B, S)
        b = row.shape[0]
        u = torch.rand(b, 2, generator=generator, device=row.device)
        # Inverse CDF; the clamp guards against a cumulative sum that ends just below u.
        nxt = (row.cumsum(dim=1) < u[:, :1]).sum(dim=1).clamp_max(self.num_states - 1)
        log_q = q.log()
        trans = state.trans
        # Drawn only when some task can drift: the draw depends on the latent, never on actions.
        if bool((latent.hazard > 0).any()):
            fresh = self._draw_matrices(latent.alpha, generator)
            change = u[:, 1] < latent.hazard
            trans = torch.where(change[:, None, None], fresh, trans)
        xlogy = torch.where(row > 0, row * row.clamp_min(1e-30).log(), torch.zeros_like(row))
        out = StepOut(
            reward=log_q.gather(1, nxt[:, None])[:, 0],
            expected_reward=(row * log_q).sum(dim=1),
            optimal_expected_reward=xlogy.sum(dim=1),
            feedback=torch.nn.functional.one_hot(nxt, self.num_states).float(),
        )
        return ChainState(t=state.t + 1, s=nxt, trans=trans), out

    def oracle_action(self, latent: ChainLatent, state: ChainState) -> Tensor:
        """The true current row P(next | s), (B, S)."""
        return self.current_row(state)

    # --- discrete-posterior observer ---------------------------------------------------------
    @property
    def supports_discrete_posterior(self) -> bool:
        """Only without drift: a change point would redraw a candidate from the prior."""
        return self.hazard == 0

    def _check_fixed(self, candidates: ChainLatent) -> None:
        """Candidates must not drift: a change point would redraw them from the prior."""
        check(
            bool((candidates.hazard == 0).all()),
            "hazard",
            float(candidates.hazard.max()),
            "0 for a discrete posterior over fixed candidate chains",
        )

    def log_likelihood(
        self, candidates: ChainLatent, state: ChainState, action: Tensor, out: StepOut
    ) -> Tensor:
        """Categorical log-likelihood of the revealed next state under each candidate, (B, K)."""
        self._check_fixed(candidates)
        nxt = out.feedback.argmax(dim=1)  # (B,)
        p = candidates.trans[:, state.s, nxt]  # (K, B)
        return rearrange(p, "k b -> b k").double().clamp_min(1e-300).log()  # (B, K)

    def mixture_mean(self, candidates: ChainLatent, weights: Tensor, state: ChainState) -> Tensor:
        """Posterior predictive of the next state: the mixture of the candidates' rows, (B, S)."""
        self._check_fixed(candidates)
        s = self.num_states
        flat = rearrange(candidates.trans.double(), "k s t -> k (s t)")  # (K, S*S)
        mean = rearrange(weights.double() @ flat, "b (s t) -> b s t", s=s)  # (B, S, S)
        return mean[torch.arange(mean.shape[0], device=mean.device), state.s]

    def prior_observer(self) -> Policy:
        """The Bayesian bigram (exact without drift) or the change-point filter (with drift)."""

        obs = BigramPolicy() if self.hazard == 0 else ChangePointBigramPolicy()
        obs.name = "family_prior"
        return obs

    def references(self) -> dict:
        """Oracle, uniform ("random"), unigram, Bayesian bigram, Bayes with change points."""

        return {
            "oracle": OraclePolicy(),
            "random": UniformPolicy(),
            "unigram": UnigramPolicy(),
            "bigram": BigramPolicy(),
            "bayes_optimal": ChangePointBigramPolicy(),
        }
