"""The policy/evaluation layer: the learner as a policy, and what is measured of any policy.

Above tasks and archs, below the run pipeline (``mesalab.studies``) and the analyses
(``mesalab.analysis``): it imports only tasks and archs, and everything above may import it.

- ``learner_policy``: a learner (archs) acting in the one rollout loop (tasks) as a policy;
- ``action_heads``: how a learner's heads become actions (discrete, real, simplex);
- ``metrics``: paired rollouts and their summaries (curves, improvement, regret, intervals);
- ``location``: the location-learning index (task location vs task learning);
- ``resample``: bootstrap helpers shared by the metrics and the analyses.
"""
