"""SPEC §5's two steps, written once over a kernel layer's primitives.

:func:`make_steps` takes the layer's kernels and a few adapters and returns the steps. The CPU
compiles them end to end (``kernels/cpu/step.py``: one compiled call per step, no return to
Python between kernels); CUDA runs them as Python, each kernel call a launch on
device-resident buffers (``kernels/cuda/step.py``). The one driver that calls them is
``backends.kernel.KernelBackend``.

Arguments of the steps, on both layers: ``tP``/``tQ`` the tables (``kernels.groups``
``TableArrays`` or ``DeviceTableArrays``), batches ``(users, pos, neg)`` sampled on the host, a
layout ``(per_row, per_dim)`` of each table's Λ, ``grads`` a ``LambdaGrads``, ``rule`` a
``LookaheadRule``, ``step`` a ``StepScalars`` and ``work`` the layer's scratch.

The adapters say what differs between the layers, and nothing else does:

- ``hold(t, n_buffers, first, second)``: hold the rows of two host index arrays, numbered in
  table order (``kernels.cpu.hypergradient.hold_in_table_order``), clear the first
  ``n_buffers`` compact buffers and the counts; returns the rows held;
- ``zero_lambda_grads(G, n_rows)``: G[:n_rows] = 0;
- ``on_device(work, which, batch)``: the batch's index arrays where the kernels read them
  (``which``: 0 the training batch, 1 the validation batch);
- ``clear_scalars(work)``: reset the step's accumulated loss and norm;
- ``batch_loss(loss, n, work)`` and ``squared_norm(G, n_rows, work)``: Σ loss[:n] and Σ G²
  over the first rows, returned (CPU) or accumulated on the device (CUDA: 0 returned);
- ``scalars(work, loss_sum, sq_norm)``: ``(loss sum, ‖G_Λ‖²)`` of the step, fetched from the
  device where they were accumulated there;
- ``catch_up(tP, tQ, batch, ahead, work)`` and ``defers_rows(work)``: *deferred rows*. Where
  ``defers_rows(work)`` (CPU, dense Adam with the ``batch`` scope), the real step updates only
  the rows its batch touches: every other row's step has d = 0 and waits. ``catch_up`` runs
  the waiting steps of the rows a batch reads before anything reads them (``ahead`` = 1 in the
  real step: up to the step before, whose own update follows), with bit-identical results
  (``kernels.cpu.optimizers.adam_catch_up``); the backend brings every row up to date before
  Θ leaves it. Elsewhere (CUDA, other optimizers) they do nothing and return False;
- ``compile``: how a step is made callable from another (CPU: ``jit``; CUDA: as it is).

The kernels that take a Λ layout (``lookahead_rows_of``, ``adam_update_of``, …) take it as their
first two arguments on both layers (CUDA reads it from Λ's shape and ignores them).
"""

from types import SimpleNamespace


def make_steps(
    *,
    hold,
    zero_lambda_grads,
    on_device,
    clear_scalars,
    batch_loss,
    squared_norm,
    scalars,
    bpr_forward,
    bpr_grad_scatter,
    lookahead_rows_of,
    accumulate_lambda_grad,
    release_rows,
    adam_update_of,
    lazy_adam_update_of,
    sgd_update_of,
    catch_up,
    defers_rows,
    compile,
):
    """The steps over one layer's kernels: ``lookahead_step``, ``batch_gradient``,
    ``theta_step_adam``, ``theta_step_lazy_adam``, ``theta_step_sgd`` (see the module's
    docstring for the arguments)."""

    def lookahead_step(tP, tQ, Bbar, V, grads, layout_P, layout_Q, rule, step, work):
        """SPEC §5 steps 1-4: holds V's rows (the caller releases them after step 5), fills
        ``grads.G_P``/``grads.G_Q`` (one array when Λ is tied) and returns ``(L_val(Θ̄),
        ‖G_Λ‖² or 0, rows held in P, rows held in Q)``. ``rule`` and ``step`` are the
        lookahead's (SPEC §8: they may differ from the real step's)."""
        f = tP.T.dtype.type
        nb, nv = Bbar[0].shape[0], V[0].shape[0]
        catch_up(tP, tQ, Bbar, 0, work)
        catch_up(tP, tQ, V, 0, work)
        nP = hold(tP, 2, V[0], V[0][:0])
        nQ = hold(tQ, 2, V[1], V[2])
        rows_P = nP if layout_P[0] else 1
        rows_Q = nQ if layout_Q[0] else 1
        zero_lambda_grads(grads.G_P, rows_P)
        zero_lambda_grads(grads.G_Q, rows_Q)
        clear_scalars(work)
        ub, ib, jb = on_device(work, 0, Bbar)
        uv, iv, jv = on_device(work, 1, V)
        delta, loss = work.delta, work.loss
        # 1. ḡ at Θ_t on the held rows, with their counts in B̄ (triplets of B̄ that touch no
        # held row are skipped: their gradient lands on no held row)
        inv_b = f(1.0 / nb)
        bpr_forward(tP.T, tQ.T, tP.identity, tQ.identity, ub, ib, jb, tP.slot, tQ.slot, delta, loss)
        bpr_grad_scatter(
            tP.T,
            tQ.T,
            tP.identity,
            tQ.identity,
            ub,
            ib,
            jb,
            delta,
            inv_b,
            tP.slot,
            tQ.slot,
            tP.buf[0],
            tQ.buf[0],
            tP.count,
            tQ.count,
            True,
            work.nblocks,
        )
        # 2. assumed step Θ̄ and ∂Θ̄/∂Λ on the held rows
        for t, n_held, (per_row, per_dim) in ((tP, nP, layout_P), (tQ, nQ, layout_Q)):
            lookahead_rows_of(
                per_row,
                per_dim,
                t.T,
                t.m,
                t.v,
                t.buf[0],
                t.count,
                t.held,
                n_held,
                t.lam,
                inv_b,
                rule.full_scope,
                rule.assumed_penalty,
                rule.optimizer,
                step.alpha,
                step.lr,
                step.beta1,
                step.beta2,
                step.c1,
                step.c2,
                step.eps_in,
                step.eps_out,
                t.Tbar,
                t.dTbar_dlam,
            )
        # 3. L_val(Θ̄) and G_Θ̄ (Θ̄ is compact: addressed through the slot maps)
        bpr_forward(tP.Tbar, tQ.Tbar, tP.slot, tQ.slot, uv, iv, jv, tP.slot, tQ.slot, delta, loss)
        loss_sum = batch_loss(loss, nv, work)
        bpr_grad_scatter(
            tP.Tbar,
            tQ.Tbar,
            tP.slot,
            tQ.slot,
            uv,
            iv,
            jv,
            delta,
            f(1.0 / nv),
            tP.slot,
            tQ.slot,
            tP.buf[1],
            tQ.buf[1],
            tP.scratch_count,
            tQ.scratch_count,
            False,
            work.nblocks,
        )
        # 4. G_Λ = reduce(G_Θ̄ ⊙ ∂Θ̄/∂Λ), and its squared norm for step 5's clip
        if grads.learn_P:
            accumulate_lambda_grad(tP.buf[1], tP.dTbar_dlam, nP, layout_P[0], grads.G_P)
        if grads.learn_Q:
            accumulate_lambda_grad(tQ.buf[1], tQ.dTbar_dlam, nQ, layout_Q[0], grads.G_Q)
        sq_norm = 0.0
        if grads.norm and grads.learn_P:
            sq_norm += squared_norm(grads.G_P, rows_P, work)
        if grads.norm and grads.learn_Q and not grads.tied:
            sq_norm += squared_norm(grads.G_Q, rows_Q, work)
        loss_sum, sq_norm = scalars(work, loss_sum, sq_norm)
        return loss_sum / nv, sq_norm, nP, nQ

    def batch_gradient(tP, tQ, B, work):
        """The first half of the real step: hold B's rows and put the BPR gradient on them
        (compact, with their counts). Returns ``(1/|B|, rows held in P, rows held in Q,
        the batch's loss sum or 0 where it stays on the device)``."""
        n = B[0].shape[0]
        inv = tP.T.dtype.type(1.0 / n)
        catch_up(tP, tQ, B, 1, work)
        nP = hold(tP, 1, B[0], B[0][:0])
        nQ = hold(tQ, 1, B[1], B[2])
        clear_scalars(work)
        u, i, j = on_device(work, 0, B)
        bpr_forward(
            tP.T, tQ.T, tP.identity, tQ.identity, u, i, j, tP.slot, tQ.slot, work.delta, work.loss
        )
        loss_sum = batch_loss(work.loss, n, work)
        bpr_grad_scatter(
            tP.T,
            tQ.T,
            tP.identity,
            tQ.identity,
            u,
            i,
            j,
            work.delta,
            inv,
            tP.slot,
            tQ.slot,
            tP.buf[0],
            tQ.buf[0],
            tP.count,
            tQ.count,
            True,
            work.nblocks,
        )
        return inv, nP, nQ, loss_sum

    batch_gradient = compile(batch_gradient)

    def finish(tP, tQ, n, nP, nQ, loss_sum, work):
        """Release B's rows; returns L_fit."""
        release_rows(tP.slot, tP.held, nP)
        release_rows(tQ.slot, tQ.held, nQ)
        loss_sum, _ = scalars(work, loss_sum, 0.0)
        return loss_sum / n

    finish = compile(finish)

    # The real step (SPEC §5, last paragraph), one per Θ optimizer: ``batch_gradient``, the
    # fused update of each table for its Λ layout, release of the held rows. All three take
    # ``(tP, tQ, B, layout_P, layout_Q, full_scope, step, work)`` (``step``: the real step's
    # scalars; ε terms: ``math.optimizers.adam_eps_terms``) and return L_fit.

    def theta_step_lazy_adam(tP, tQ, B, layout_P, layout_Q, full_scope, step, work):
        inv, nP, nQ, loss_sum = batch_gradient(tP, tQ, B, work)
        for t, n_held, (per_row, per_dim) in ((tP, nP, layout_P), (tQ, nQ, layout_Q)):
            lazy_adam_update_of(
                per_row,
                per_dim,
                t.T,
                t.m,
                t.v,
                t.held,
                n_held,
                t.buf[0],
                t.count,
                t.lam,
                inv,
                step.alpha,
                step.beta1,
                step.beta2,
                step.c1,
                step.c2,
                step.eps_in,
                step.eps_out,
            )
        return finish(tP, tQ, B[0].shape[0], nP, nQ, loss_sum, work)

    theta_step_lazy_adam = compile(theta_step_lazy_adam)

    def theta_step_adam(tP, tQ, B, layout_P, layout_Q, full_scope, step, work):
        if defers_rows(work):  # the held rows' update is dense Adam's; the rest waits
            return theta_step_lazy_adam(tP, tQ, B, layout_P, layout_Q, full_scope, step, work)
        inv, nP, nQ, loss_sum = batch_gradient(tP, tQ, B, work)
        for t, (per_row, per_dim) in ((tP, layout_P), (tQ, layout_Q)):
            adam_update_of(
                per_row,
                per_dim,
                t.T,
                t.m,
                t.v,
                t.slot,
                t.buf[0],
                t.count,
                t.lam,
                inv,
                full_scope,
                step.alpha,
                step.beta1,
                step.beta2,
                step.c1,
                step.c2,
                step.eps_in,
                step.eps_out,
            )
        return finish(tP, tQ, B[0].shape[0], nP, nQ, loss_sum, work)

    def theta_step_sgd(tP, tQ, B, layout_P, layout_Q, full_scope, step, work):
        inv, nP, nQ, loss_sum = batch_gradient(tP, tQ, B, work)
        for t, n_held, (per_row, per_dim) in ((tP, nP, layout_P), (tQ, nQ, layout_Q)):
            sgd_update_of(
                per_row,
                per_dim,
                t.T,
                t.slot,
                t.held,
                n_held,
                t.buf[0],
                t.count,
                t.lam,
                inv,
                full_scope,
                step.lr,
            )
        return finish(tP, tQ, B[0].shape[0], nP, nQ, loss_sum, work)

    return SimpleNamespace(
        lookahead_step=compile(lookahead_step),
        batch_gradient=batch_gradient,
        theta_step_adam=compile(theta_step_adam),
        theta_step_lazy_adam=theta_step_lazy_adam,
        theta_step_sgd=compile(theta_step_sgd),
    )
