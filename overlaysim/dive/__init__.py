"""``overlaysim dive``: a layer explorer with an honest waste figure and dive's own figures.

:mod:`model` reads overlay diff dirs into :class:`~overlaysim.dive.model.Layer` lists,
:mod:`stack` stacks them as overlayfs does and marks what each layer changed, :mod:`waste`
computes the honest waste, :mod:`diveformula` dive's figures, :mod:`ci` the gate, and
:mod:`app` the textual UI (imported only when the UI runs).
"""
