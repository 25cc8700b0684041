"""torch.hub entry points: ``torch.hub.load("<owner>/adain_cuda" or a local clone, "stylizer", ...)``.

The compiled kernels are used when the package is installed (``pip install --no-build-isolation
.``); from a bare clone the pure-PyTorch reference runs instead, with one warning.
"""

dependencies = ["torch", "numpy", "PIL", "tqdm"]


def stylizer(vgg=None, decoder=None, **options):
    """An ``adain_cuda.Stylizer`` with the pretrained community weights (or the given files),
    downloaded and verified on first use; ``options`` go to the Stylizer (device, precision, ...).

        s = torch.hub.load("path/to/adain_cuda", "stylizer", source="local", device="cpu")
        image = s.stylize("photo.jpg", "painting.jpg")
    """
    from adain_cuda.stylize import Stylizer

    return Stylizer.from_pretrained(vgg, decoder, **options)


def adain_layer(eps=1e-5, unbiased=True):
    """The drop-in ``adain_cuda.AdaIN`` module."""
    from adain_cuda import AdaIN

    return AdaIN(eps=eps, unbiased=unbiased)
