
import pytest

from .harness import VM, prepare


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/vm/" in str(item.fspath):
            item.add_marker(pytest.mark.vm)


@pytest.fixture(scope="session")
def vm_assets(tmp_path_factory):
    return prepare(str(tmp_path_factory.mktemp("vm-assets")))


@pytest.fixture
def vm(vm_assets, tmp_path):
    kernel, initrd = vm_assets
    return VM(str(tmp_path / "vm"), kernel.vmlinuz, initrd)


@pytest.fixture
def vm_kernel(vm_assets):
    return vm_assets[0]
