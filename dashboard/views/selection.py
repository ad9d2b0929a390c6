"""Selection: fine-tuned accuracy per data-selection rule and subset size."""

from toptune.dashboard.widgets import study_page

study_page.show(study_page.SELECTION)
